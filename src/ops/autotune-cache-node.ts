// Node disk cache of autotune results: one JSON file, keyed by adapter, features and kernel
// fingerprint, written atomically (temp file + rename) so concurrent processes never see half a file.
// Location: $VITCATS_CACHE_DIR, else $XDG_CACHE_HOME/vitcatsvdogs, else ~/.cache/vitcatsvdogs.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { AttentionAutotuneEntry, AutotuneCache, AutotuneEntry } from './autotune.ts';

interface CacheFile { version: 1; entries: Record<string, AutotuneEntry | AttentionAutotuneEntry> }

export function autotuneCachePath(): string {
  const dir = process.env.VITCATS_CACHE_DIR
    ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vitcatsvdogs');
  return join(dir, 'autotune.json');
}

function load(path: string): CacheFile {
  try {
    const data = JSON.parse(readFileSync(path, 'utf8')) as CacheFile;
    if (data?.version === 1 && data.entries && typeof data.entries === 'object') return data;
  } catch {
    /* missing or corrupt: start afresh */
  }
  return { version: 1, entries: {} };
}

export function nodeAutotuneCache(path = autotuneCachePath()): AutotuneCache {
  return {
    read(key) {
      return load(path).entries[key] ?? null;
    },
    write(key, entry) {
      const data = load(path);
      data.entries[key] = entry;
      mkdirSync(join(path, '..'), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
      renameSync(tmp, path);
    },
  };
}
