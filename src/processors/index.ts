/**
 * The static list of built-in processors, registered at start with no
 * dynamic import and no instance made until a flow asks for one.
 */

import type { BuiltInProcessor } from './builtin.ts';
import { compressContent } from './compress-content.ts';
import { evaluateJsonPath } from './evaluate-json-path.ts';
import { generateFlowFile } from './generate-flow-file.ts';
import { getFile } from './get-file.ts';
import { hashContent } from './hash-content.ts';
import { logAttribute } from './log-attribute.ts';
import { mergeContent } from './merge-content.ts';
import { putFile } from './put-file.ts';
import { replaceText } from './replace-text.ts';
import { routeOnAttribute } from './route-on-attribute.ts';
import { splitText } from './split-text.ts';
import { updateAttribute } from './update-attribute.ts';

export type { BuiltInProcessor } from './builtin.ts';
export { builtInPluginId } from './builtin.ts';

export const BUILTIN_PROCESSORS: readonly BuiltInProcessor[] = [
  generateFlowFile,
  getFile,
  putFile,
  logAttribute,
  updateAttribute,
  routeOnAttribute,
  replaceText,
  splitText,
  mergeContent,
  evaluateJsonPath,
  hashContent,
  compressContent,
];
