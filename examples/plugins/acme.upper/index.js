// The example plugin of DESIGN.md: plain JavaScript, no imports.
const info = {
  name: 'UpperCase',
  version: '1.2.0',
  description: 'Upper-cases text',
  tags: ['text'],
  properties: [],
  relationships: [{ name: 'success' }],
};

export default {
  processors: {
    UpperCase: () => ({
      getInfo: () => info,
      async onTrigger(ctx, session) {
        for (let ff = session.get(); ff; ff = session.get()) {
          const text = new TextDecoder().decode(await session.read(ff));
          session.transfer(session.write(ff, new TextEncoder().encode(text.toUpperCase())), 'success');
        }
        session.commit();
      },
    }),
  },
};
