// Sets the attribute named by "Attribute" to the value of "Value". Runs in a
// process sandbox by default, inline when the operator trusts it
// (--inline-plugin acme.stamp).
const info = {
  name: 'Stamp',
  version: '1.0.0',
  description: 'Sets one attribute',
  tags: ['attributes'],
  properties: [
    { name: 'Attribute', description: 'The attribute to set', required: true, defaultValue: 'stamped.by' },
    { name: 'Value', description: 'Its value', required: true, defaultValue: 'acme.stamp' },
  ],
  relationships: [{ name: 'success' }],
};

export default {
  processors: {
    Stamp: () => ({
      getInfo: () => info,
      onTrigger(ctx, session) {
        const key = ctx.getProperty('Attribute').asString();
        const value = ctx.getProperty('Value').asString();
        for (let ff = session.get(); ff; ff = session.get()) session.transfer(session.putAttribute(ff, key, value), 'success');
        session.commit();
      },
    }),
  },
};
