// The one tsup configuration of the workspace's packages: ESM for Node 20, declarations, source maps, a clean
// dist. Each package's tsup.config.ts calls it with what differs: its entries and its externals (`webgpu`, Dawn's
// native addon, must load from its own package directory, so packages that can reach it keep it external).
// turbo.json lists this file in globalDependencies, so a change here rebuilds every package.

/**
 * @param {object} [options]
 * @param {string[] | Record<string, string>} [options.entry] entry points (default `src/index.ts`)
 * @param {string} [options.dtsEntry] the one entry that gets declarations, when other entries are workers or scripts
 * @param {boolean} [options.dts] false to skip declarations
 * @param {string[]} [options.external] packages left as imports in the bundle
 * @returns {import('tsup').Options}
 */
export function tsupConfig({ entry = ['src/index.ts'], dtsEntry, dts = true, external = [] } = {}) {
  return {
    entry,
    format: ['esm'],
    dts: dts && dtsEntry ? { entry: dtsEntry } : dts,
    sourcemap: true,
    clean: true,
    target: 'node20',
    ...(external.length > 0 ? { external } : {}),
  };
}
