import pkg from '../package.json' with { type: 'json' };

/** The version of this DataBridge, as plugins' engine ranges see it. */
export const VERSION: string = pkg.version;
