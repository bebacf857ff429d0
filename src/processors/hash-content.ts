/** HashContent: puts a cryptographic hash of the content into an attribute. */

import { createHash, getHashes } from 'node:crypto';
import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

/** NiFi's algorithm names → node:crypto's. */
const ALGORITHMS: Record<string, string> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA3-256': 'sha3-256',
  'SHA3-512': 'sha3-512',
  'BLAKE2b-512': 'blake2b512',
};
const available = new Set(getHashes());
const NAMES = Object.keys(ALGORITHMS).filter((n) => available.has(ALGORITHMS[n]!));

const info: ProcessorInfo = {
  name: 'HashContent',
  description: 'Computes a hash of the content (hex) and puts it into an attribute.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['hash', 'content', 'checksum', 'sha256', 'integrity'],
  inputRequirement: 'required',
  properties: [
    { name: 'Hash Attribute Name', description: 'Attribute to write', defaultValue: 'hash.value', required: true },
    { name: 'Hash Algorithm', description: 'Algorithm', allowedValues: NAMES, defaultValue: 'SHA-256', required: true },
  ],
  relationships: [Relationships.SUCCESS, Relationships.FAILURE],
};

function createHashContent(): Processor {
  return {
    getInfo: () => info,
    async onTrigger(ctx, session) {
      const attribute = ctx.getProperty('Hash Attribute Name').asString();
      const algorithm = ALGORITHMS[ctx.getProperty('Hash Algorithm').asString()]!;
      for (let ff = session.get(); ff; ff = session.get()) {
        const digest = createHash(algorithm)
          .update(await session.read(ff))
          .digest('hex');
        session.transfer(session.putAttribute(ff, attribute, digest), 'success');
      }
      session.commit();
    },
  };
}

export const hashContent: BuiltInProcessor = { type: 'HashContent', info, factory: createHashContent };
