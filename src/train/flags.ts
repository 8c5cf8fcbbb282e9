// The command line's one flag syntax, shared by the trainer's parameters (params.ts) and the
// predict/eval commands (cli.ts): `--name value`, `--name=value`, kebab or snake case, `--no-name`
// for flags that can be turned off, and positional words.

export interface FlagSpec {
  /** 'value': the next word (or =value); 'optional': the next word only when `accepts` it (a bare flag: no value) */
  takes: 'value' | 'optional';
  accepts?: (word: string) => boolean;
  /** --no-NAME is understood */
  negatable?: boolean;
}

export interface Flag {
  /** the name in snake case, without the "no_" of a negated flag */
  key: string;
  /** the flag as written, without its value ("--batch-size", "--no-flip") */
  spelled: string;
  /** the value given (=value or the next word); undefined when none */
  value: string | undefined;
  negated: boolean;
  /** false when `spec` does not know the flag (its value, if it looks like one, was taken too) */
  known: boolean;
}

/** Splits argv into flags (in order) and positional words; `spec` says how each flag takes a value. */
export function parseFlags(argv: readonly string[], spec: (key: string) => FlagSpec | null): { flags: Flag[]; positional: string[] } {
  const flags: Flag[] = [];
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (!token.startsWith('--') || token === '--') {
      positional.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = eq >= 0 ? token.slice(2, eq) : token.slice(2);
    const inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    let key = name.replace(/-/g, '_');
    let s = spec(key);
    let negated = false;
    if (!s && key.startsWith('no_') && spec(key.slice(3))?.negatable) {
      key = key.slice(3);
      s = spec(key);
      negated = true;
    }
    const next = argv[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith('--');
    let value = inline;
    // A negated flag takes no following word; an unknown flag takes its value along.
    if (value === undefined && nextIsValue && !negated) {
      if (!s || s.takes === 'value' || s.accepts?.(next)) {
        value = next;
        i++;
      }
    }
    flags.push({ key, spelled: `--${name}`, value, negated, known: s !== null });
  }
  return { flags, positional };
}
