/**
 * Types for the two parts of npm's client the catalog uses that ship none:
 * npm-registry-fetch's credential lookup and npm's HTTP agent.
 */

declare module 'npm-registry-fetch/lib/auth.js' {
  /** The credentials npm sends with a request to `uri` (`.npmrc` keys in `opts`, `registry` the one asked). */
  export interface Auth {
    token: string | null;
    /** base64 `user:password`, for a Basic header. */
    auth: string | null;
    cert: string | null;
    key: string | null;
  }
  function getAuth(uri: string, opts: Record<string, unknown>): Auth;
  export default getAuth;
}

declare module '@npmcli/agent' {
  import type { Agent } from 'node:http';
  /** npm's agent for `url` (cached per option set): keep-alive, proxies, TLS options, `timeout` as the idle timeout. */
  export function getAgent(url: string, options: Record<string, unknown>): Agent;
}
