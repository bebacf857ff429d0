/** RouteOnAttribute: routes each FlowFile by boolean expressions over its attributes. */

import type { Processor, ProcessorInfo, RelationshipSpec, ValidationFinding } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const STRATEGY = 'Routing Strategy';
const TO_NAME = 'Route to Property name';
const ALL = "Route to 'matched' if all match";
const ANY = "Route to 'matched' if any matches";
const UNMATCHED: RelationshipSpec = { name: 'unmatched', description: 'FlowFiles that match no expression' };
const MATCHED: RelationshipSpec = { name: 'matched', description: 'FlowFiles that match (the matched strategies)' };

const info: ProcessorInfo = {
  name: 'RouteOnAttribute',
  description:
    'Each dynamic property is a boolean expression such as ${fileSize:gt(1024)}. With "Route to Property name", a FlowFile goes to the relationship named by each true property, else to unmatched.',
  version: VERSION,
  author: 'DataBridge',
  tags: ['attributes', 'routing', 'expression', 'filter'],
  inputRequirement: 'required',
  dynamicProperties: true,
  properties: [
    { name: STRATEGY, description: 'How matches route', allowedValues: [TO_NAME, ALL, ANY], defaultValue: TO_NAME },
  ],
  relationships: [UNMATCHED, MATCHED],
};

const routesOf = (properties: Readonly<Record<string, string>>) =>
  Object.keys(properties).filter((k) => k !== STRATEGY);

function createRouteOnAttribute(): Processor {
  return {
    getInfo: () => info,
    getRelationships(properties) {
      if ((properties[STRATEGY] ?? TO_NAME) !== TO_NAME) return [MATCHED, UNMATCHED];
      return [
        ...routesOf(properties).map((name) => ({ name, description: `FlowFiles for which ${name} is true` })),
        UNMATCHED,
      ];
    },
    validate(properties) {
      const routes = routesOf(properties);
      const findings: ValidationFinding[] = routes.length
        ? []
        : [{ message: 'add at least one dynamic property: a relationship name and its boolean expression' }];
      for (const reserved of ['unmatched', 'matched']) {
        if (routes.includes(reserved))
          findings.push({ property: reserved, message: 'is a reserved relationship name' });
      }
      return findings;
    },
    onTrigger(ctx, session) {
      const strategy = ctx.getProperty(STRATEGY).asString();
      const routes = routesOf(ctx.getProperties());
      for (let ff = session.get(); ff; ff = session.get()) {
        const matched = routes.filter((r) => ctx.getProperty(r).evaluate(ff).asString() === 'true');
        if (strategy === TO_NAME) {
          if (matched.length === 0) session.transfer(ff, 'unmatched');
          else {
            // one FlowFile per matching route; the clones share the content
            for (const route of matched.slice(1)) session.transfer(session.clone(ff), route);
            session.transfer(ff, matched[0]!);
          }
        } else {
          const ok = strategy === ALL ? matched.length === routes.length : matched.length > 0;
          session.transfer(ff, ok ? 'matched' : 'unmatched');
        }
      }
      session.commit();
    },
  };
}

export const routeOnAttribute: BuiltInProcessor = { type: 'RouteOnAttribute', info, factory: createRouteOnAttribute };
