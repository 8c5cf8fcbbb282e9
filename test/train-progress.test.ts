import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProgressBar, formatEpochLine, formatDuration, type ProgressStream } from '../src/train/progress.ts';

/** A stream that records what is written, and a clock the test moves. */
function fakeStream(isTTY: boolean, columns?: number): ProgressStream & { chunks: string[]; text(): string } {
  const chunks: string[] = [];
  return { isTTY, columns, chunks, write(s: string) { chunks.push(s); return true; }, text: () => chunks.join('') };
}
function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test('formatEpochLine: the original project\'s line, character for character', () => {
  assert.is(
    formatEpochLine({ epoch: 7, loss: 0.2399, acc: 0.9014, val_loss: 0.9127, val_acc: 0.6396 }),
    'Epoch : 7 - loss : 0.2399 - acc: 0.9014 - val_loss : 0.9127 - val_acc: 0.6396',
  );
  assert.is(
    formatEpochLine({ epoch: 12, loss: 0.5, acc: 1, val_loss: 0.123456, val_acc: 0.66665 + 1e-9 }),
    'Epoch : 12 - loss : 0.5000 - acc: 1.0000 - val_loss : 0.1235 - val_acc: 0.6667',
  );
});

test('terminal: one line redrawn in place with percent, bar, count, times, rate and extras', () => {
  const out = fakeStream(true);
  const c = clock();
  const bar = new ProgressBar({ total: 157, label: 'EPOCH 3', stream: out, now: c.now, redrawMs: 0 });
  for (let i = 0; i < 89; i++) {
    c.advance(42000 / 89);
    bar.tick(1, { loss: 0.5123 });
  }
  const last = out.chunks[out.chunks.length - 1];
  assert.is(last, '\rEPOCH 3  57%|█████▋    | 89/157 [00:42<00:32, 2.12it/s] loss=0.5123');
  assert.ok(out.chunks.length >= 89, 'redrawn on each tick');
  assert.ok(out.chunks.every((s) => s.startsWith('\r')), 'every redraw returns to the line start');
  assert.not.ok(out.text().includes('\n'), 'no newline before done');
  for (let i = 0; i < 68; i++) {
    c.advance(500);
    bar.tick();
  }
  bar.done();
  bar.done(); // idempotent
  const text = out.text();
  assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'));
  assert.match(text, /\rEPOCH 3 100%\|██████████\| 157\/157 \[01:16<00:00, 2\.\d\dit\/s\] loss=0\.5123 *\n$/);
});

test('terminal: throttled redraws, a bar that fits the width, messages above the bar', () => {
  const out = fakeStream(true, 80);
  const c = clock();
  const bar = new ProgressBar({ total: 1000, label: 'EPOCH 1', stream: out, now: c.now });
  for (let i = 0; i < 1000; i++) {
    c.advance(10);
    bar.tick();
  }
  // 10 s of ticks with the default 100 ms throttle: about 100 redraws, not 1000.
  assert.ok(out.chunks.length > 50 && out.chunks.length < 150, `${out.chunks.length} redraws`);
  for (const chunk of out.chunks) assert.ok(chunk.replace('\r', '').length <= 79, `line fits: ${JSON.stringify(chunk)}`);
  const slow = fakeStream(true);
  const b2 = new ProgressBar({ total: 10, stream: slow, now: c.now, redrawMs: 0 });
  c.advance(4000);
  b2.tick();
  assert.match(slow.chunks[slow.chunks.length - 1], /4\.00s\/it/);
  b2.log('warning: skipped 2 files');
  assert.match(slow.text(), /\r +\rwarning: skipped 2 files\n\r 10%\|/);
  b2.done();
});

test('not a terminal: plain lines every 10 % (or 30 s), no control characters', () => {
  const out = fakeStream(false);
  const c = clock();
  const bar = new ProgressBar({ total: 100, label: 'EPOCH 2', stream: out, now: c.now });
  for (let i = 0; i < 100; i++) {
    c.advance(250);
    bar.tick(1, { loss: 0.25 + i / 1000 });
  }
  bar.done();
  const text = out.text();
  assert.not.match(text, /[\r\x1b\x00-\x08\x0b-\x1f]/);
  const lines = text.trimEnd().split('\n');
  assert.is(lines.length, 10);
  assert.is(lines[0], 'EPOCH 2 10% 10/100 [00:02<00:22, 4.00it/s] loss=0.2590');
  assert.match(lines[9], /^EPOCH 2 100% 100\/100 \[00:25<00:00, 4\.00it\/s\] loss=0\.3490$/);

  // Slow epochs: a line every 30 s even between the 10 % marks; done() adds the final line.
  const slow = fakeStream(false);
  const b2 = new ProgressBar({ total: 1000, stream: slow, now: c.now });
  for (let i = 0; i < 5; i++) {
    c.advance(31000);
    b2.tick();
  }
  b2.done();
  const slowLines = slow.text().trimEnd().split('\n');
  assert.is(slowLines.length, 5);
  assert.match(slowLines[0], /^0% 1\/1000 \[00:31</);
  // The stream's own isTTY is the default.
  const auto = fakeStream(false);
  new ProgressBar({ total: 3, stream: auto }).done();
  assert.not.ok(auto.text().includes('\r'));
});

test('formatDuration', () => {
  assert.is(formatDuration(0), '00:00');
  assert.is(formatDuration(42.9), '00:42');
  assert.is(formatDuration(3599), '59:59');
  assert.is(formatDuration(3600 + 62), '1:01:02');
});

test.run();
