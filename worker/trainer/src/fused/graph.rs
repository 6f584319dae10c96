//! One burn-autodiff node whose forward is a LibTorch computation recorded by LibTorch's own
//! autograd, and whose backward is LibTorch's backward of that computation.
//!
//! burn records every tensor operation as a node of its graph, with its own saved inputs and
//! backward kernels, and pays host-side bookkeeping for each; LibTorch's fused kernels (SDPA,
//! LayerNorm, GELU) are used by burn only without autodiff. Here a whole block becomes one burn
//! node: the tracked inputs enter LibTorch as leaves that require grad, the block runs there
//! (LibTorch saves what its kernels need, e.g. SDPA's log-sum-exp and dropout seed), and
//! burn's backward step asks LibTorch for the gradients of the leaves and registers them on the
//! input nodes. Nothing of the block is recomputed.

use std::fmt;
use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, LibTorch};

/// The LibTorch side of one recorded block: its leaves and its output, which carries the
/// block's LibTorch graph.
struct Recorded {
    leaves: Vec<tch::Tensor>,
    output: tch::Tensor,
}

/// Backward state: taken (and so freed) by the one backward pass that uses it.
#[derive(Clone)]
pub struct Saved(Arc<Mutex<Option<Recorded>>>);

impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Saved(LibTorch graph)")
    }
}

#[derive(Debug)]
struct TorchBackward;

impl<const N: usize> Backward<LibTorch, N> for TorchBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let Some(recorded) = ops.state.0.lock().expect("not poisoned").take() else {
            return;
        };
        let wanted: Vec<(usize, _)> = ops
            .parents
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|node| (i, node.id)))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let leaves: Vec<&tch::Tensor> = wanted.iter().map(|(i, _)| &recorded.leaves[*i]).collect();
        // d(sum(output · grad))/d leaf is the vector-Jacobian product with `grad`: LibTorch's
        // `run_backward` takes a scalar root.
        let root = (&recorded.output * &grad.tensor).sum(None);
        let found = tch::with_grad(|| tch::Tensor::run_backward(&[root], &leaves, false, false));
        for ((_, id), g) in wanted.into_iter().zip(found) {
            grads.register::<LibTorch>(id, TchTensor::new(g));
        }
    }
}

/// Runs `block` on the primitives of `inputs` as one burn-autodiff node. `block` gets the
/// inputs as LibTorch tensors, in order (tracked ones as leaves that require grad), and
/// returns the block's output; it must not detach or modify its inputs.
pub fn run<C: CheckpointStrategy, const N: usize>(
    inputs: [FloatTensor<Autodiff<LibTorch, C>>; N],
    block: impl FnOnce(&[tch::Tensor]) -> tch::Tensor,
) -> FloatTensor<Autodiff<LibTorch, C>> {
    let nodes = inputs.each_ref().map(|t| t.node());
    let tracked = inputs.each_ref().map(|t| t.is_tracked());
    let tensors: Vec<tch::Tensor> = inputs
        .into_iter()
        .map(|t| t.into_primitive().tensor)
        .collect();
    match TorchBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let leaves: Vec<tch::Tensor> = tensors
                .iter()
                .zip(tracked)
                .map(|(t, tracked)| t.detach().set_requires_grad(tracked))
                .collect();
            let output = tch::with_grad(|| block(&leaves));
            let result = TchTensor::new(output.detach());
            let saved = Saved(Arc::new(Mutex::new(Some(Recorded { leaves, output }))));
            prep.finish(saved, result)
        }
        OpsKind::UnTracked(prep) => prep.finish(TchTensor::new(tch::no_grad(|| block(&tensors)))),
    }
}
