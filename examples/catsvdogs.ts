// The cats-vs-dogs command line from a checkout: `npm run catsvdogs -- [train|predict|eval|help] ...`
// (the same as the installed `vitcatsvdogs ...`; see src/cli.ts). Imports the package's public entry only.
import { fileURLToPath } from 'node:url';
import { main, runQuietly } from 'vitcatsvdogs/cli';

await runQuietly(fileURLToPath(import.meta.url), process.argv.slice(2), main);
