// Reverses each line of text. Asks for `isolation: "process"`: it runs in a
// child process with no file, network or child-process access at all.
const info = {
  name: 'ReverseLines',
  version: '1.0.0',
  description: 'Reverses the characters of each line',
  tags: ['text'],
  properties: [],
  relationships: [{ name: 'success' }],
};

export default {
  processors: {
    ReverseLines: () => ({
      getInfo: () => info,
      async onTrigger(ctx, session) {
        for (let ff = session.get(); ff; ff = session.get()) {
          const text = new TextDecoder().decode(await session.read(ff));
          const reversed = text
            .split('\n')
            .map((line) => [...line].reverse().join(''))
            .join('\n');
          session.transfer(session.putAttribute(session.write(ff, reversed), 'reversed.by', 'acme.reverse'), 'success');
        }
        session.commit();
      },
    }),
  },
};
