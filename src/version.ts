import { resolve } from 'node:path';
import pkg from '../package.json' with { type: 'json' };

/** The version of this DataBridge, as plugins' engine ranges see it. */
export const VERSION: string = pkg.version;

/** The package's root folder (where package.json, console/, examples/ and schemas/ are). */
export const PACKAGE_ROOT: string = resolve(import.meta.dirname, '..');
