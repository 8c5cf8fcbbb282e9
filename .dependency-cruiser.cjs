// The layers, bottom up: a module may import its own layer and those below, never one above, and no
// runtime import cycle anywhere (`npm run deps`, run by CI). Type-only imports count for the layers
// (they are still an arrow) but not for cycles (they vanish at run time).
const layers = [
  ['gpu runtime, formats, references', '^src/(gpu/|io/safetensors\\.ts$|ref/)'],
  ['tensor + autograd', '^src/(tensor|autograd)\\.ts$'],
  ['ops (with their shaders)', '^src/ops/'],
  ['nn, optim', '^src/(nn|optim)/'],
  ['vit', '^src/vit/'],
  ['io (checkpoint folders)', '^src/io/(?!safetensors\\.ts$)'],
  ['data', '^src/data/'],
  ['train', '^src/train/'],
  ['command line, entries', '^src/(cli|bin|index|node)\\.ts$'],
  ['examples, bench, tests', '^(examples|bench|test)/'],
];

const upward = layers.flatMap(([name, path], i) => layers.slice(i + 1).map(([above, abovePath]) => ({
  name: 'no-upward-import',
  comment: `${name} must not import ${above}`,
  severity: 'error',
  from: { path, pathNot: i === 0 ? undefined : layers.slice(0, i).map(([, p]) => p) },
  to: { path: abovePath },
})));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'platform-neutral-core',
      comment: 'the main entry (src/index.ts) reaches no Node built-in and no Node-only package',
      severity: 'error',
      from: { path: '^src/index\\.ts$' },
      to: { reachable: true, path: '^(node:|fs$|path$|os$|url$|crypto$|worker_threads$|child_process$|stream|zlib$|http|module$|node_modules/(webgpu|pngjs|jpeg-js)/)' },
    },
    {
      name: 'bench-not-from-test',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every import resolves (the examples import the package by its name, through its exports; @webgpu/types is types only)',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: ['^vitcatsvdogs', '^@webgpu/types$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { conditionNames: ['vitcatsvdogs-source', 'import', 'node', 'default'] },
  },
};
