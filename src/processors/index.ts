/**
 * The static list of built-in processors, registered at start with no
 * dynamic import and no instance made until a flow asks for one.
 */

import type { BuiltInProcessor } from './builtin.ts';
import { generateFlowFile } from './generate-flow-file.ts';

export type { BuiltInProcessor } from './builtin.ts';
export { builtInPluginId } from './builtin.ts';

export const BUILTIN_PROCESSORS: readonly BuiltInProcessor[] = [generateFlowFile];
