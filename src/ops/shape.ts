// Shape ops that move no data: reshape as a recorded view.
import { Tensor } from '../tensor.ts';
import { record } from '../autograd.ts';

/** A view of x with another shape (one dim may be -1); gradients flow back reshaped. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = x.view(shape);
  return record(out, 'reshape', [x], (g) => [g.view(x.shape)]);
}
