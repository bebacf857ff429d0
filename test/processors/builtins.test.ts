import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { runProcessor } from '../flow-harness.ts';
import { tempDir } from '../helpers.ts';

const text = (b: Buffer) => b.toString('utf8');

describe('built-in processors', () => {
  test('GenerateFlowFile: size, batch, text data, dynamic attributes, Max FlowFiles', async (t) => {
    const { out } = await runProcessor(t, 'GenerateFlowFile', {
      properties: { 'File Size': '1 KB', 'Batch Size': '7', 'Max FlowFiles': '20', team: 'blue' },
    });
    assert.equal(out.success!.length, 20);
    for (const ff of out.success!) {
      assert.equal(ff.content.length, 1024);
      assert.match(text(ff.content), /^[A-Za-z0-9 ]+$/);
      assert.equal(ff.attributes.team, 'blue');
    }
    const custom = await runProcessor(t, 'GenerateFlowFile', {
      properties: { 'Custom Text': 'hi ${literal("there")}', 'Max FlowFiles': '2' },
    });
    assert.deepEqual(
      custom.out.success!.map((f) => text(f.content)),
      ['hi there', 'hi there'],
    );
  });

  test('GetFile: reads a folder recursively with path attributes, removes sources, never follows links', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'a.txt'), 'alpha');
    writeFileSync(join(dir, 'sub', 'b.txt'), 'beta');
    writeFileSync(join(dir, '.hidden'), 'secret');
    writeFileSync(join(tempDir(t), 'outside.txt'), 'outside');
    symlinkSync('/etc/hostname', join(dir, 'link.txt'));
    const { out } = await runProcessor(t, 'GetFile', { properties: { 'Input Directory': dir } });
    const got = out.success!.map((f) => [f.attributes.path, f.attributes.filename, text(f.content)]).sort();
    assert.deepEqual(got, [
      ['./', 'a.txt', 'alpha'],
      ['sub/', 'b.txt', 'beta'],
    ]);
    assert.ok(!existsSync(join(dir, 'a.txt')) && !existsSync(join(dir, 'sub', 'b.txt')), 'sources removed');
    assert.ok(existsSync(join(dir, '.hidden')), 'hidden files left alone');
    assert.equal(out.success![0]!.attributes['file.size'] !== undefined, true);
  });

  test('GetFile with Keep Source File picks each file once and leaves it', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'a.txt'), 'alpha');
    const { out } = await runProcessor(t, 'GetFile', {
      properties: { 'Input Directory': dir, 'Keep Source File': 'true' },
      yieldDuration: '20 ms',
      settleMs: 200,
    });
    assert.equal(out.success!.length, 1);
    assert.ok(existsSync(join(dir, 'a.txt')));
  });

  test('PutFile: writes by filename, honours each conflict strategy, refuses names leaving the folder', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'taken.txt'), 'old');
    const inputs = [
      { content: 'new', attributes: { filename: 'fresh.txt' } },
      { content: 'clash', attributes: { filename: 'taken.txt' } },
      { content: 'evil', attributes: { filename: '../escape.txt' } },
    ];
    const fail = await runProcessor(t, 'PutFile', { properties: { Directory: dir }, inputs, penaltyDuration: '1 ms' });
    assert.equal(readFileSync(join(dir, 'fresh.txt'), 'utf8'), 'new');
    assert.equal(readFileSync(join(dir, 'taken.txt'), 'utf8'), 'old');
    assert.deepEqual(fail.out.failure!.map((f) => f.attributes.filename).sort(), ['../escape.txt', 'taken.txt']);
    assert.match(
      fail.out.failure!.find((f) => f.attributes.filename === '../escape.txt')!.attributes['putfile.error']!,
      /unsafe/,
    );
    assert.ok(!existsSync(join(dir, '..', 'escape.txt')));
    const replace = await runProcessor(t, 'PutFile', {
      properties: { Directory: dir, 'Conflict Resolution Strategy': 'replace' },
      inputs: [inputs[1]!],
    });
    assert.equal(replace.out.success!.length, 1);
    assert.equal(readFileSync(join(dir, 'taken.txt'), 'utf8'), 'clash');
    const ignore = await runProcessor(t, 'PutFile', {
      properties: { Directory: dir, 'Conflict Resolution Strategy': 'ignore' },
      inputs: [{ content: 'ignored', attributes: { filename: 'taken.txt' } }],
    });
    assert.equal(ignore.out.success!.length, 1);
    assert.equal(readFileSync(join(dir, 'taken.txt'), 'utf8'), 'clash');
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary files left',
    );
  });

  test('PutFile is idempotent: a file already holding the same bytes counts as written under every strategy', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'done.txt'), 'same bytes');
    for (const strategy of ['fail', 'ignore', 'replace']) {
      const { out } = await runProcessor(t, 'PutFile', {
        properties: { Directory: dir, 'Conflict Resolution Strategy': strategy },
        inputs: [
          { content: 'same bytes', attributes: { filename: 'done.txt' } },
          { content: 'same byteZ', attributes: { filename: strategy === 'replace' ? 'other.txt' : 'done.txt' } },
        ],
        penaltyDuration: '1 ms',
      });
      const failed = strategy === 'fail' ? 1 : 0;
      assert.equal(out.success!.length, 2 - failed, strategy);
      assert.equal(out.failure!.length, failed, `${strategy}: other bytes under the same name still conflict`);
    }
    assert.equal(readFileSync(join(dir, 'done.txt'), 'utf8'), 'same bytes');
    assert.deepEqual(readdirSync(dir).sort(), ['done.txt', 'other.txt'], 'one file each, no temporary file left');
  });

  test('LogAttribute passes FlowFiles on unchanged', async (t) => {
    const { out } = await runProcessor(t, 'LogAttribute', {
      properties: { 'Log Payload': 'true' },
      inputs: [{ content: 'payload', attributes: { k: 'v' } }],
    });
    assert.equal(out.success!.length, 1);
    assert.equal(text(out.success![0]!.content), 'payload');
    assert.equal(out.success![0]!.attributes.k, 'v');
  });

  test('UpdateAttribute: sets expressions per FlowFile and deletes by regex', async (t) => {
    const { out } = await runProcessor(t, 'UpdateAttribute', {
      properties: { shout: '${filename:toUpper()}!', size: '${fileSize}', 'Delete Attributes Expression': 'tmp\\..*' },
      inputs: [{ content: 'abc', attributes: { filename: 'a.txt', 'tmp.x': '1', keep: 'yes' } }],
    });
    const attrs = out.success![0]!.attributes;
    assert.equal(attrs.shout, 'A.TXT!');
    assert.equal(attrs.size, '3');
    assert.equal(attrs['tmp.x'], undefined);
    assert.equal(attrs.keep, 'yes');
  });

  test('RouteOnAttribute: to each matching property, with clones, or to unmatched', async (t) => {
    const { out } = await runProcessor(t, 'RouteOnAttribute', {
      properties: { big: '${fileSize:gt(3)}', csv: "${filename:endsWith('.csv')}" },
      inputs: [
        { content: 'abcdef', attributes: { filename: 'x.csv' } },
        { content: 'ab', attributes: { filename: 'y.csv' } },
        { content: 'ab', attributes: { filename: 'z.txt' } },
      ],
    });
    assert.deepEqual(
      out.big!.map((f) => f.attributes.filename),
      ['x.csv'],
    );
    assert.deepEqual(out.csv!.map((f) => f.attributes.filename).sort(), ['x.csv', 'y.csv']);
    assert.deepEqual(
      out.unmatched!.map((f) => f.attributes.filename),
      ['z.txt'],
    );
    const all = await runProcessor(t, 'RouteOnAttribute', {
      properties: { 'Routing Strategy': "Route to 'matched' if all match", a: 'true', b: '${x:equals("1")}' },
      inputs: [{ attributes: { x: '1' } }, { attributes: { x: '2' } }],
    });
    assert.equal(all.out.matched!.length, 1);
    assert.equal(all.out.unmatched!.length, 1);
  });

  test('ReplaceText: regex with groups, literal, prepend/append, line by line, bad regex to failure', async (t) => {
    const regex = await runProcessor(t, 'ReplaceText', {
      properties: { 'Search Value': '(\\w+)@(\\w+)', 'Replacement Value': '$2 at $1' },
      inputs: [{ content: 'mail ada@home and bob@work' }],
    });
    assert.equal(text(regex.out.success![0]!.content), 'mail home at ada and work at bob');
    const lines = await runProcessor(t, 'ReplaceText', {
      properties: { 'Replacement Strategy': 'Prepend', 'Replacement Value': '> ', 'Evaluation Mode': 'Line-by-Line' },
      inputs: [{ content: 'one\ntwo\n' }],
    });
    assert.equal(text(lines.out.success![0]!.content), '> one\n> two\n');
    const literal = await runProcessor(t, 'ReplaceText', {
      properties: {
        'Replacement Strategy': 'Literal Replace',
        'Search Value': '.*',
        'Replacement Value': '${filename}',
      },
      inputs: [{ content: 'a.* b.*', attributes: { filename: 'F' } }],
    });
    assert.equal(text(literal.out.success![0]!.content), 'aF bF');
    const whole = await runProcessor(t, 'ReplaceText', {
      properties: { 'Replacement Value': 'all new' },
      inputs: [{ content: 'line 1\nline 2' }],
    });
    assert.equal(text(whole.out.success![0]!.content), 'all new', 'the default (?s)(^.*$) matches the whole text');
    const bad = await runProcessor(t, 'ReplaceText', {
      properties: { 'Search Value': '${pattern}' },
      inputs: [{ content: 'x', attributes: { pattern: '(' } }],
    });
    assert.equal(bad.out.failure!.length, 1);
  });

  test("ReplaceText: NiFi's ${'$1'} reads a capture group in an expression, per match; values stay literal", async (t) => {
    const upper = await runProcessor(t, 'ReplaceText', {
      properties: { 'Search Value': '(\\w+)', 'Replacement Value': "${'$1':toUpper()}" },
      inputs: [{ content: 'hello world' }],
    });
    assert.equal(text(upper.out.success![0]!.content), 'HELLO WORLD');
    const mixed = await runProcessor(t, 'ReplaceText', {
      properties: {
        'Search Value': '(\\w+)@(\\w+)',
        'Replacement Value': "${'$2':toUpper():append('-')}$1 $0 $$ $9",
        'Evaluation Mode': 'Line-by-Line',
      },
      inputs: [{ content: 'ada@home\nbob@work\n' }],
    });
    assert.equal(text(mixed.out.success![0]!.content), 'HOME-ada ada@home $ $9\nWORK-bob bob@work $ $9\n');
    // a `$1` inside a group's text or an attribute is text, never a reference
    const literal = await runProcessor(t, 'ReplaceText', {
      properties: { 'Search Value': '(\\w+)=(\\S+)', 'Replacement Value': "${'$2'}:$1:${filename}" },
      inputs: [{ content: 'a=$1', attributes: { filename: 'f$2' } }],
    });
    assert.equal(text(literal.out.success![0]!.content), '$1:a:f$2');
  });

  test('ReplaceText: a capture group the search lacks, or outside Regex Replace, is a finding, not empty content', async (t) => {
    await assert.rejects(
      runProcessor(t, 'ReplaceText', {
        properties: { 'Search Value': '(\\w+)', 'Replacement Value': "${'$2':toUpper()}" },
        inputs: [{ content: 'hello' }],
      }),
      /Replacement Value.*reads the capture group \$2, but the Search Value has one group/,
    );
    await assert.rejects(
      runProcessor(t, 'ReplaceText', {
        properties: { 'Replacement Strategy': 'Append', 'Replacement Value': "${'$1'}" },
        inputs: [{ content: 'hello' }],
      }),
      /reads the capture group \$1, which only the Regex Replace strategy has/,
    );
  });

  test('SplitText: splits by lines as clones over the same bytes; header lines are repeated', async (t) => {
    const content = 'a\nb\nc\nd\ne\n';
    const { out } = await runProcessor(t, 'SplitText', {
      properties: { 'Line Split Count': '2' },
      inputs: [{ content }],
    });
    assert.deepEqual(
      out.splits!.map((f) => text(f.content)),
      ['a\nb', 'c\nd', 'e'],
    );
    assert.deepEqual(
      out.splits!.map((f) => f.attributes['fragment.index']),
      ['1', '2', '3'],
    );
    assert.ok(out.splits!.every((f) => f.attributes['fragment.count'] === '3'));
    assert.equal(out.original!.length, 1);
    const withHeader = await runProcessor(t, 'SplitText', {
      properties: { 'Line Split Count': '1', 'Header Line Count': '1', 'Remove Trailing Newlines': 'false' },
      inputs: [{ content: 'h\n1\n2\n' }],
    });
    assert.deepEqual(
      withHeader.out.splits!.map((f) => text(f.content)),
      ['h\n1\n', 'h\n2\n'],
    );
  });

  test('MergeContent: bins with header, footer and demarcator; defragment reassembles splits in order', async (t) => {
    const { out } = await runProcessor(t, 'MergeContent', {
      properties: {
        'Minimum Number of Entries': '3',
        'Delimiter Strategy': 'Text',
        Header: '[',
        Footer: ']',
        Demarcator: ',',
        'Correlation Attribute Name': 'group',
      },
      inputs: [
        { content: '1', attributes: { group: 'a' } },
        { content: '2', attributes: { group: 'b' } },
        { content: '3', attributes: { group: 'a' } },
        { content: '4', attributes: { group: 'a' } },
      ],
      yieldDuration: '20 ms',
    });
    assert.deepEqual(
      out.merged!.map((f) => text(f.content)),
      ['[1,3,4]'],
    );
    assert.equal(out.merged![0]!.attributes.group, 'a');
    assert.equal(out.merged![0]!.attributes['merge.count'], '3');
    assert.equal(out.original!.length, 3);
    const frag = (i: number, c: string) => ({
      content: c,
      attributes: {
        'fragment.identifier': 'F',
        'fragment.index': String(i),
        'fragment.count': '3',
        'segment.original.filename': 'whole.txt',
      },
    });
    const defrag = await runProcessor(t, 'MergeContent', {
      properties: { 'Merge Strategy': 'Defragment' },
      inputs: [frag(3, 'c'), frag(1, 'a'), frag(2, 'b')],
    });
    assert.equal(text(defrag.out.merged![0]!.content), 'abc');
    assert.equal(defrag.out.merged![0]!.attributes.filename, 'whole.txt');
  });

  test('EvaluateJsonPath: to attributes and to content; bad JSON to failure; missing path to unmatched', async (t) => {
    const doc = JSON.stringify({ order: { id: 7, items: [{ sku: 'A' }, { sku: 'B' }], note: null } });
    const attrs = await runProcessor(t, 'EvaluateJsonPath', {
      properties: {
        id: '$.order.id',
        skus: '$..sku',
        first: "$.order.items[0]['sku']",
        note: '$.order.note',
        none: '$.nope',
      },
      inputs: [{ content: doc }, { content: '{not json' }],
    });
    const a = attrs.out.matched![0]!.attributes;
    assert.equal(a.id, '7');
    assert.equal(a.skus, '["A","B"]');
    assert.equal(a.first, 'A');
    assert.equal(a.note, '');
    assert.equal(a.none, '');
    assert.equal(attrs.out.failure!.length, 1);
    const content = await runProcessor(t, 'EvaluateJsonPath', {
      properties: { Destination: 'flowfile-content', items: '$.order.items' },
      inputs: [{ content: doc }, { content: '{}' }],
    });
    assert.equal(text(content.out.matched![0]!.content), '[{"sku":"A"},{"sku":"B"}]');
    assert.equal(content.out.unmatched!.length, 1);
  });

  test('a processor that writes content to an auto-terminated relationship drops it cleanly', async (t) => {
    const { out, flow } = await runProcessor(t, 'ReplaceText', {
      properties: { 'Replacement Value': 'gone' },
      inputs: [{ content: 'a' }, { content: 'b' }],
      autoTerminate: ['success'],
    });
    assert.equal(out.success, undefined, 'success is auto-terminated, so it has no sink');
    assert.equal(flow.stats().processors['under-test']!.out, 2);
    assert.equal(flow.stats().processors['under-test']!.errors, 0);
  });

  test('HashContent: hex digest by algorithm into the named attribute', async (t) => {
    const { out } = await runProcessor(t, 'HashContent', {
      properties: { 'Hash Algorithm': 'SHA-512', 'Hash Attribute Name': 'h' },
      inputs: [{ content: 'abc' }],
    });
    assert.equal(out.success![0]!.attributes.h, createHash('sha512').update('abc').digest('hex'));
  });

  test('CompressContent: gzip and brotli round trips; corrupt input to failure', async (t) => {
    const gz = await runProcessor(t, 'CompressContent', {
      properties: { 'Update Filename': 'true' },
      inputs: [{ content: 'hello hello hello', attributes: { filename: 'h.txt' } }],
    });
    const g = gz.out.success![0]!;
    assert.equal(gunzipSync(g.content).toString(), 'hello hello hello');
    assert.equal(g.attributes.filename, 'h.txt.gz');
    assert.equal(g.attributes['mime.type'], 'application/gzip');
    const br = await runProcessor(t, 'CompressContent', {
      properties: { 'Compression Format': 'brotli', 'Compression Level': '11' },
      inputs: [{ content: 'brotli!' }],
    });
    assert.equal(brotliDecompressSync(br.out.success![0]!.content).toString(), 'brotli!');
    const de = await runProcessor(t, 'CompressContent', {
      properties: { Mode: 'decompress', 'Compression Format': 'use mime.type attribute', 'Update Filename': 'true' },
      inputs: [
        { content: gzipSync('round trip'), attributes: { 'mime.type': 'application/gzip', filename: 'r.gz' } },
        { content: 'not gzip at all', attributes: { 'mime.type': 'application/gzip' } },
      ],
    });
    assert.equal(text(de.out.success![0]!.content), 'round trip');
    assert.equal(de.out.success![0]!.attributes.filename, 'r');
    assert.equal(de.out.failure!.length, 1);
  });
});
