import { resolve } from 'node:path';
import pkg from '../package.json' with { type: 'json' };

/** The version of this DataBridge, as plugins' engine ranges see it. */
export const VERSION: string = pkg.version;

/** The package's root folder (where package.json, console/, examples/ and schemas/ are). */
export const PACKAGE_ROOT: string = resolve(import.meta.dirname, '..');

/**
 * The Node.js this checkout pins (the `node` package, a dev dependency): a
 * scaffolded plugin project pins the same, so its npm scripts run on it
 * whatever the system Node is.
 */
export const PINNED_NODE: string = pkg.devDependencies.node;
