/** UpdateAttribute: sets attributes from dynamic properties (values may be expressions); deletes by regex. */

import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const DELETE = 'Delete Attributes Expression';

const info: ProcessorInfo = {
  name: 'UpdateAttribute',
  description:
    'Sets attributes: each dynamic property names an attribute, and its value (an expression such as ${filename:toUpper()}) is evaluated per FlowFile.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['attributes', 'modification', 'update', 'expression'],
  inputRequirement: 'required',
  dynamicProperties: true,
  properties: [
    {
      name: DELETE,
      description: 'Attributes whose names match this regular expression are removed (before the sets)',
      type: 'regex',
    },
  ],
  relationships: [Relationships.SUCCESS],
};

function createUpdateAttribute(): Processor {
  return {
    getInfo: () => info,
    validate(properties) {
      return Object.hasOwn(properties, 'uuid')
        ? [{ property: 'uuid', message: 'the uuid attribute cannot be set' }]
        : [];
    },
    onTrigger(ctx, session) {
      const del = ctx.getProperty(DELETE);
      const deleting = del.isSet() ? new RegExp(`^(?:${del.asString()})$`) : undefined;
      const names = Object.keys(ctx.getProperties()).filter((n) => n !== DELETE);
      for (let ff = session.get(); ff; ff = session.get()) {
        if (deleting) {
          for (const key of Object.keys(ff.attributes)) {
            if (key !== 'uuid' && deleting.test(key)) ff = session.removeAttribute(ff, key);
          }
        }
        const updates: Record<string, string> = {};
        for (const name of names) updates[name] = ctx.getProperty(name).evaluate(ff).asString();
        if (names.length) ff = session.putAllAttributes(ff, updates);
        session.transfer(ff, 'success');
      }
      session.commit();
    },
  };
}

export const updateAttribute: BuiltInProcessor = { type: 'UpdateAttribute', info, factory: createUpdateAttribute };
