// The cats-vs-dogs command line from a checkout: `npm run catsvdogs -- [train|predict|eval|help] ...`
// (the same as `vitcatsvdogs ...`; see src/cli.ts).
import { main } from '../src/cli.ts';

process.exit(await main(process.argv.slice(2)));
