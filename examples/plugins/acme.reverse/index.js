// Reverses each line of text. Asks for `isolation: "process"`: it runs in an
// OS-confined child process (as every plugin does by default) even where an
// operator lists it as trusted for a worker; it declares no file, network or
// child-process access, so its sandbox gives it none.
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
