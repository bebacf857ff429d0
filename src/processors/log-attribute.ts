/** LogAttribute: logs each FlowFile's attributes (and optionally its content), then passes it on. */

import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const info: ProcessorInfo = {
  name: 'LogAttribute',
  description: "Logs each FlowFile's attributes, and optionally its content, at the chosen level.",
  version: VERSION,
  author: 'DataBridge',
  tags: ['attributes', 'logging', 'debug'],
  inputRequirement: 'required',
  properties: [
    {
      name: 'Log Level',
      description: 'Level of the log lines',
      allowedValues: ['debug', 'info', 'warn', 'error'],
      defaultValue: 'info',
      required: true,
    },
    { name: 'Log Payload', description: 'Also log the content (as UTF-8)', type: 'boolean', defaultValue: 'false' },
    {
      name: 'Attributes to Log by Regular Expression',
      description: 'Only attributes whose names match',
      type: 'regex',
      defaultValue: '.*',
    },
    { name: 'Log prefix', description: 'Text put before each line' },
  ],
  relationships: [Relationships.SUCCESS],
};

function createLogAttribute(): Processor {
  return {
    getInfo: () => info,
    async onTrigger(ctx, session) {
      const level = ctx.getProperty('Log Level').asString() as 'debug' | 'info' | 'warn' | 'error';
      const payload = ctx.getProperty('Log Payload').asBoolean();
      const pattern = new RegExp(`^(?:${ctx.getProperty('Attributes to Log by Regular Expression').asString()})$`);
      const prefix = ctx.getProperty('Log prefix').asString();
      for (let ff = session.get(); ff; ff = session.get()) {
        const attributes = Object.fromEntries(Object.entries(ff.attributes).filter(([k]) => pattern.test(k)));
        const fields: Record<string, unknown> = { flowFile: ff.id, size: ff.size, attributes };
        if (payload) fields.payload = new TextDecoder().decode(await session.read(ff));
        ctx.logger[level](`${prefix}FlowFile ${ff.attributes.filename}`, fields);
        session.transfer(ff, 'success');
      }
      session.commit();
    },
  };
}

export const logAttribute: BuiltInProcessor = { type: 'LogAttribute', info, factory: createLogAttribute };
