// The cats-vs-dogs command line from a checkout: `npm run catsvdogs -- [train|predict|eval|help] ...`
// (the same as the installed `vitcatsvdogs ...`; see src/cli.ts). Imports the package's public entry only.
import { main } from 'vitcatsvdogs/cli';

process.exit(await main(process.argv.slice(2)));
