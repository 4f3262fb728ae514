// The doctest extractor and output matcher: node --test tools/pack-test/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareOutput, extractDoctests } from './doctest.mjs';

const readme = `# pkg

\`\`\`js
notRun();
\`\`\`

\`\`\`js doctest
const a = 1;
console.log(a);
\`\`\`

\`\`\`text output
1
\`\`\`

\`\`\`js doctest continued
console.log(a + 1);
\`\`\`

\`\`\`text output
2
\`\`\`

\`\`\`yaml file=conf/tiny.yaml
a: 1
\`\`\`

- a list item:

  \`\`\`js doctest
  console.log('indented');
  \`\`\`
`;

test('examples, continuations, outputs and files', () => {
  const { examples, files } = extractDoctests(readme);
  assert.equal(examples.length, 2);
  assert.equal(examples[0].code, 'const a = 1;\nconsole.log(a);\nconsole.log(a + 1);\n');
  assert.equal(examples[0].expected, '1\n2');
  assert.equal(examples[0].line, 7);
  assert.equal(examples[1].code, "console.log('indented');\n");
  assert.equal(examples[1].expected, null);
  assert.deepEqual(files, [{ name: 'conf/tiny.yaml', content: 'a: 1\n', line: 24 }]);
});

test('misplaced or malformed blocks are errors naming the line', () => {
  assert.throws(
    () => extractDoctests('```text output\n1\n```\n'),
    /README.md:1: an output block must follow/,
  );
  assert.throws(
    () => extractDoctests('```js doctest\nx\n```\n```text output\n1\n```\n```text output\n2\n```\n'),
    /README.md:7/,
  );
  assert.throws(() => extractDoctests('```ts doctest\nx\n```\n'), /must be js, not "ts"/);
  assert.throws(() => extractDoctests('```js doctest continued\nx\n```\n'), /no doctest block before/);
  assert.throws(() => extractDoctests('```yaml file=../x.yaml\na\n```\n'), /relative path inside/);
  assert.throws(() => extractDoctests('```js doctest\nx\n'), /never closed/);
});

test('output matching: exact lines, trailing space, ... wildcards', () => {
  assert.equal(compareOutput('a\nb', '\na  \nb\n\n'), null);
  assert.match(compareOutput('a\nb', 'a\nc\n'), /line 2: expected "b", got "c"/);
  assert.match(compareOutput('a', 'a\nb\n'), /expected "\(end of output\)", got "b"/);
  assert.match(compareOutput('a\nb', 'a\n'), /expected "b", got "\(end of output\)"/);
  assert.equal(compareOutput('x = ... ms', 'x = 12.5 ms'), null);
  assert.notEqual(compareOutput('x = ... ms', 'x = 12.5 s'), null);
  assert.equal(compareOutput('...\nlast', 'one\ntwo\nlast\n'), null);
  assert.equal(compareOutput('first\n...\nlast', 'first\nlast\n'), null);
  assert.notEqual(compareOutput('first\n...\nlast', 'first\nlast\nmore\n'), null);
  assert.equal(compareOutput('a (b) [c] ...', 'a (b) [c] d'), null); // regex characters are literal
});
