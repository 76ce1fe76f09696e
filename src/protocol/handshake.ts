// The handshake: the first request on every connection, either direction's version check.
import { z } from 'zod';

/** Bumped on any incompatible change to a message of this folder. */
export const PROTOCOL_VERSION = 1;

export const HELLO = 'shadowcopy.hello';

export const HelloParams = z.object({
  protocolVersion: z.number().int(),
  /** Which socket the client believes it is on; a mismatch is refused. */
  role: z.enum(['writer', 'requester']),
  /** Free text for logs, e.g. "my-app/1.2 (pid 1234)". */
  client: z.string().max(200).optional(),
});
export type HelloParams = z.infer<typeof HelloParams>;

export const HelloResult = z.object({
  protocolVersion: z.number().int(),
  server: z.literal('shadowcopy'),
  serverVersion: z.string(),
});
export type HelloResult = z.infer<typeof HelloResult>;

/** Methods a peer may call before the handshake (only the handshake itself). */
export const PRE_HANDSHAKE_METHODS: readonly string[] = [HELLO];
