// Softmax cross-entropy and softmax (shaders/loss.wgsl).
import { Tensor, keep } from '../tensor.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';
import { record } from '../autograd.ts';
import type { Device } from '../gpu/device.ts';

export interface CrossEntropyOptions {
  /** torch's label_smoothing: the target is (1 - s) * onehot + s / numLabels. Default 0. */
  labelSmoothing?: number;
}

/** Threads per row: enough for the row, capped lower on a CPU rasteriser (expensive barriers). */
function threadsPerRow(device: Device, cols: number): number {
  const cap = device.isCPU ? 16 : 64;
  let n = 1;
  while (n < cols && n < cap) n *= 2;
  return n;
}

/** Throws unless every label is an integer in [0, numLabels); `what` names where they came from. */
function checkLabels(labels: ArrayLike<number>, numLabels: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!Number.isInteger(v)) throw new Error(`crossEntropy: ${what}labels[${i}] = ${v} is not an integer`);
    if (v < 0 || v >= numLabels) {
      throw new Error(`crossEntropy: ${what}labels[${i}] = ${v} is out of range for ${numLabels} labels`);
    }
  }
}

/**
 * Checks the labels on the CPU (count, integers, range) and uploads host labels as int32. A labels
 * tensor must be int32 with one label per row; it is checked from the values it was made with
 * (Tensor.fromArray keeps them on the host), so that a label out of range is an error at the call
 * rather than a NaN loss, at no GPU cost (a read-back would be a sync in every training step).
 */
function labelTensor(
  labels: Tensor | readonly number[] | Int32Array, batch: number, numLabels: number, device: Device,
): { tensor: Tensor; owned: boolean } {
  if (labels instanceof Tensor) {
    if (labels.dtype !== 'i32') {
      throw new Error('crossEntropy: a labels tensor must be int32 (Tensor.fromArray(new Int32Array(labels), [batch]))');
    }
    if (labels.size !== batch) {
      throw new Error(`crossEntropy: labels tensor [${labels.shape}] has ${labels.size} labels for a batch of ${batch}`);
    }
    const values = labels.hostInt32;
    if (!values) {
      throw new Error(`crossEntropy: labels tensor [${labels.shape}] was not made from host values (Tensor.fromArray), so its labels cannot be checked; pass an Int32Array`);
    }
    checkLabels(values, numLabels, `labels tensor [${labels.shape}]: `);
    return { tensor: labels, owned: false };
  }
  if (labels.length !== batch) {
    throw new Error(`crossEntropy: ${labels.length} labels for a batch of ${batch}`);
  }
  checkLabels(labels, numLabels, '');
  return { tensor: Tensor.fromArray(Int32Array.from(labels), [batch], { device }), owned: true };
}

/**
 * Mean over the batch of -log softmax(logits_b)[label_b], like torch nn.CrossEntropyLoss with
 * reduction 'mean' and label_smoothing (no ignore_index or class weights). logits [B, L]; labels:
 * B class indices (host array or int32 tensor). Returns a [1] tensor.
 */
export function crossEntropy(
  logits: Tensor, labels: Tensor | readonly number[] | Int32Array, opts: CrossEntropyOptions = {},
): Tensor {
  if (logits.shape.length !== 2 || logits.dtype !== 'f32') {
    throw new Error(`crossEntropy: logits must be float32 [batch, numLabels], got ${logits.dtype} [${logits.shape}]`);
  }
  const [batch, numLabels] = logits.shape;
  if (batch === 0 || numLabels === 0) throw new Error(`crossEntropy: empty logits [${logits.shape}]`);
  const smoothing = opts.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) {
    throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${smoothing}`);
  }
  const device = logits.device;
  const { tensor: labelsT, owned } = labelTensor(labels, batch, numLabels, device);
  const wg = threadsPerRow(device, numLabels);
  const uniforms = { uniforms: { rows: batch, cols: numLabels, smoothing, scale: 1 / batch } };
  const rowLoss = Tensor.empty([batch], { device });
  // (row max, log of the sum of exp(x - max)) per row, for backward
  const stats = keep(Tensor.empty([batch, 2], { device }));
  device.dispatch({
    shader: wgsl.loss, entry: 'cross_entropy_rows', constants: { WG: wg }, ...uniforms,
    bindings: [logits.binding, labelsT.binding, rowLoss.binding, stats.binding],
    workgroups: device.grid(batch, 1),
  });
  const loss = Tensor.empty([1], { device });
  device.dispatch({
    shader: wgsl.loss, entry: 'cross_entropy_mean', constants: { WG: 64 }, ...uniforms,
    bindings: [rowLoss.binding, loss.binding], workgroups: [1],
  });
  rowLoss.dispose();
  const saved = owned ? [stats, keep(labelsT)] : [stats];
  return record(loss, 'crossEntropy', [logits], (dloss) => {
    const dlogits = Tensor.empty(logits.shape, { device });
    device.dispatch({
      shader: wgsl.loss, entry: 'cross_entropy_backward', ...uniforms,
      bindings: [logits.binding, labelsT.binding, stats.binding, dloss.binding, dlogits.binding],
      workgroups: device.grid(logits.size, shaderConstant(wgsl.loss, 'BACKWARD_WG')),
    });
    return [dlogits];
  }, saved);
}

/** Softmax over the last axis, for predictions: not recorded by autograd. */
export function softmax(logits: Tensor): Tensor {
  if (logits.shape.length === 0 || logits.dtype !== 'f32') {
    throw new Error(`softmax: logits must be float32 with at least one axis, got ${logits.dtype} [${logits.shape}]`);
  }
  const cols = logits.shape[logits.shape.length - 1];
  const rows = cols === 0 ? 0 : logits.size / cols;
  const device = logits.device;
  const probs = Tensor.empty(logits.shape, { device });
  if (rows > 0) {
    device.dispatch({
      shader: wgsl.loss, entry: 'softmax_forward', constants: { WG: threadsPerRow(device, cols) },
      uniforms: { rows, cols },
      bindings: [logits.binding, probs.binding], workgroups: device.grid(rows, 1),
    });
  }
  return probs;
}
