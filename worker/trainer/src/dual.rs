//! Dual-encoder retrieval (catalog head `dual_encoder`: LAReQA, Mewsli-X, multi-task pair
//! mixtures). One shared encoder embeds queries and candidates (mean or `[CLS]` pooling of the
//! last layer, L2-normalised); training is an in-batch softmax over the cosine similarities
//! divided by a temperature (every other candidate of the batch is a negative; a candidate with
//! the same tokens as the gold one is masked out), optionally made symmetric (candidate →
//! query as well). Evaluation embeds the candidate pool once, a chunk at a time, and keeps each
//! query's top 20 on the fly, so memory holds the queries and one chunk, never the pool.
//!
//! Training pairs come from any pair-shaped split: QA (question → the sentence holding the
//! answer, with its paragraph as second segment, as LAReQA encodes candidates), answer pools
//! (query → each gold candidate: Mewsli-X `wikipedia_pairs`), sentence pairs (text → pair:
//! translations, NLI entailments) and retrieval sets (query → its gold).

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use burn::prelude::*;
use rand::Rng;
use stilts_tasks::example::{Dataset, Label, PoolCandidate, PoolQuery};
use stilts_tasks::metrics::mean_average_precision_at_k;

use crate::batch::{TokenBatch, length_buckets};
use crate::embed::{Pool, pool};
use crate::encoder::{Encoder, EncoderConfig};
use crate::error::{Result, TrainerError};
use crate::example::{Example, Target};
use crate::heads::cross_entropy;
use crate::tokenize::{Encoded, TextTokenizer};

/// Ranks kept per query: mAP@20 (XTREME-R's LAReQA and Mewsli-X metric).
pub const TOP_K: usize = 20;

/// The sentence of `context` holding character `at`: sentences end after `.`, `!` or `?`
/// followed by white space, or after `。`, `！`, `？`. SQuAD has no sentence breaks, so LAReQA's
/// training candidates are cut this way (XQuAD-R ships its own breaks for evaluation).
pub fn sentence_around(context: &str, at: usize) -> String {
    let chars: Vec<char> = context.chars().collect();
    let mut start = 0;
    for i in 0..chars.len() {
        let c = chars[i];
        let end_here = matches!(c, '。' | '！' | '？')
            || (matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_none_or(|n| n.is_whitespace()));
        if end_here || i + 1 == chars.len() {
            if at <= i {
                return chars[start..=i]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string();
            }
            start = i + 1;
        }
    }
    context.trim().to_string()
}

fn encode_pair(tok: &TextTokenizer, first: &str, second: &str) -> Result<Encoded> {
    tok.encode(first, (!second.is_empty()).then_some(second))
}

/// A query's input: its text, then its context (the sentence around a mention) if any.
pub fn encode_query(tok: &TextTokenizer, q: &PoolQuery) -> Result<Encoded> {
    encode_pair(tok, &q.question, &q.context)
}

/// A candidate's input: sentence (or entity title), then its context (paragraph, description).
pub fn encode_candidate(tok: &TextTokenizer, c: &PoolCandidate) -> Result<Encoded> {
    encode_pair(tok, &c.sentence, &c.context)
}

fn pair_example(id: String, query: Encoded, candidate: Encoded, group: usize) -> Example {
    Example {
        id,
        inputs: vec![query, candidate],
        target: Target::Pair { group },
    }
}

/// (query, candidate) training or dev examples of a dataset, tagged with mixture `group`.
/// `positive`: for labelled sentence pairs, only pairs with this class are kept (NLI
/// entailments). `what` names the split in errors.
pub fn pair_examples(
    tok: &TextTokenizer,
    data: &Dataset,
    group: usize,
    positive: Option<usize>,
    what: &str,
) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    match data {
        Dataset::Qa(v) => {
            for e in v {
                let Some((_, start)) = e.answers.first() else {
                    return Err(TrainerError::Data(format!(
                        "{what}: question {} has no answer to make a (question, answer sentence) pair",
                        e.id
                    )));
                };
                let sentence = sentence_around(&e.context, *start);
                let q = tok.encode(&e.question, None)?;
                let c = encode_pair(tok, &sentence, &e.context)?;
                out.push(pair_example(e.id.clone(), q, c, group));
            }
        }
        Dataset::AnswerPool(p) => {
            for (i, q) in p.queries.iter().enumerate() {
                let gold = p.gold.get(i).map(Vec::as_slice).unwrap_or_default();
                if gold.is_empty() {
                    return Err(TrainerError::Data(format!(
                        "{what}: query {} has no gold candidate in the pool",
                        q.id
                    )));
                }
                for &g in gold {
                    let c = p.candidates.get(g).ok_or_else(|| {
                        TrainerError::Data(format!(
                            "{what}: query {}: gold candidate {g} is not in the pool of {}",
                            q.id,
                            p.candidates.len()
                        ))
                    })?;
                    let (qe, ce) = (encode_query(tok, q)?, encode_candidate(tok, c)?);
                    out.push(pair_example(format!("{}#{}", q.id, c.id), qe, ce, group));
                }
            }
        }
        Dataset::Pairs(v) => {
            for e in v {
                if let Some(k) = positive
                    && e.label != Label::Class(k)
                {
                    continue;
                }
                let Some(b) = &e.text_b else {
                    return Err(TrainerError::Data(format!(
                        "{what}: example {} has no second text to pair with",
                        e.id
                    )));
                };
                let (q, c) = (tok.encode(&e.text_a, None)?, tok.encode(b, None)?);
                out.push(pair_example(e.id.clone(), q, c, group));
            }
        }
        Dataset::Retrieval(r) => {
            for (i, (q, &g)) in r.queries.iter().zip(&r.gold).enumerate() {
                let c = r.candidates.get(g).ok_or_else(|| {
                    TrainerError::Data(format!("{what}: query {i}: gold {g} is not a candidate"))
                })?;
                let (qe, ce) = (tok.encode(q, None)?, tok.encode(c, None)?);
                out.push(pair_example(i.to_string(), qe, ce, group));
            }
        }
        Dataset::Choices(_) | Dataset::Tagging(_) => {
            return Err(TrainerError::Data(format!(
                "{what}: multiple-choice and tagging data give no (query, candidate) pairs"
            )));
        }
    }
    if out.is_empty() {
        return Err(TrainerError::Data(format!("{what}: no pairs")));
    }
    Ok(out)
}

/// Scales every row to unit length.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}

/// Unit-length embeddings `[batch, hidden]` of a batch of sequences (last layer, pooled).
pub fn embed_batch(
    encoder: &Encoder,
    tokens: &TokenBatch,
    how: Pool,
    device: &Device,
) -> Tensor<2> {
    let hidden = encoder.forward(&tokens.to_input(device));
    l2_normalize(pool(encoder, hidden, tokens, how))
}

/// `-1e4` at `(i, j)`, `i ≠ j`, where item `j` has the same tokens as item `i` (a duplicate of
/// the gold is no negative), else 0; row-major `[n, n]`.
fn duplicate_mask(items: &[&[u32]]) -> Vec<f32> {
    let n = items.len();
    let mut mask = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            if i != j && items[i] == items[j] {
                mask[i * n + j] = -1e4;
            }
        }
    }
    mask
}

/// In-batch softmax loss of a batch of pair examples whose embeddings `emb` are
/// `[2 × batch, hidden]` (query and candidate of an example adjacent): cross-entropy of each
/// query over all candidates of the batch, similarities divided by `temperature`; with
/// `symmetric`, the mean with the candidate → query direction.
pub fn in_batch_loss(
    emb: Tensor<2>,
    batch: &[&Example],
    temperature: f64,
    symmetric: bool,
) -> Result<Tensor<1>> {
    let b = batch.len();
    if let Some(e) = batch.iter().find(|e| e.inputs.len() != 2) {
        return Err(TrainerError::Data(format!(
            "example {}: a dual encoder needs (query, candidate) pairs, got {} inputs",
            e.id,
            e.inputs.len()
        )));
    }
    let [_, h] = emb.dims();
    let device = emb.device();
    let pairs = emb.reshape([b, 2, h]);
    let q = pairs.clone().slice([0..b, 0..1, 0..h]).reshape([b, h]);
    let c = pairs.slice([0..b, 1..2, 0..h]).reshape([b, h]);
    let mask = |side: usize| {
        let ids: Vec<&[u32]> = batch
            .iter()
            .map(|e| e.inputs[side].ids.as_slice())
            .collect();
        Tensor::<2>::from_data(TensorData::new(duplicate_mask(&ids), [b, b]), &device)
    };
    let targets: Vec<usize> = (0..b).collect();
    let scale = 1.0 / temperature;
    let forward = q.clone().matmul(c.clone().transpose()).mul_scalar(scale) + mask(1);
    let loss = cross_entropy(forward, &targets);
    if !symmetric {
        return Ok(loss);
    }
    let backward = c.matmul(q.transpose()).mul_scalar(scale) + mask(0);
    Ok((loss + cross_entropy(backward, &targets)).div_scalar(2.0))
}

fn host_rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [n, h] = t.dims();
    let flat = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainerError::Data(format!("reading embeddings: {e:?}")))?;
    Ok((0..n).map(|i| flat[i * h..(i + 1) * h].to_vec()).collect())
}

/// Unit-length embeddings of tokenized inputs, `batch` at a time (sorted by length so that
/// little goes to padding), as `[inputs, hidden]` on `device`, in the inputs' order.
pub fn embed_encoded(
    encoder: &Encoder,
    config: &EncoderConfig,
    inputs: &[Encoded],
    batch: usize,
    how: Pool,
    device: &Device,
) -> Result<Tensor<2>> {
    let h = config.hidden_size;
    let mut flat = vec![0.0f32; inputs.len() * h];
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| inputs[i].len());
    for idx in order.chunks(batch.max(1)) {
        let seqs: Vec<&Encoded> = idx.iter().map(|&i| &inputs[i]).collect();
        let tokens = TokenBatch::new(&seqs, config);
        let rows = host_rows(embed_batch(encoder, &tokens, how, device))?;
        for (&i, row) in idx.iter().zip(rows) {
            flat[i * h..(i + 1) * h].copy_from_slice(&row);
        }
    }
    Ok(Tensor::<2>::from_data(
        TensorData::new(flat, [inputs.len(), h]),
        device,
    ))
}

/// Each query's best `k` candidates of a pool of `n`, best first (ties: lower index first).
/// The pool is embedded `chunk` candidates at a time by `embed(range)` (`[range.len(), hidden]`,
/// unit length, on the queries' device), scored against all queries and merged into the
/// running top `k`; a chunk's embeddings are dropped before the next is made. Returns
/// `(score, candidate index)` lists.
pub fn top_k_streaming<F>(
    queries: &Tensor<2>,
    n: usize,
    chunk: usize,
    k: usize,
    mut embed: F,
) -> Result<Vec<Vec<(f32, usize)>>>
where
    F: FnMut(Range<usize>) -> Result<Tensor<2>>,
{
    let [nq, h] = queries.dims();
    let mut best: Vec<Vec<(f32, usize)>> = vec![Vec::new(); nq];
    let chunk = chunk.max(1);
    let mut start = 0;
    while start < n && nq > 0 {
        let end = (start + chunk).min(n);
        let cands = embed(start..end)?;
        let [m, hc] = cands.dims();
        if m != end - start || hc != h {
            return Err(TrainerError::Data(format!(
                "candidate chunk {start}..{end}: got {m} embeddings of width {hc}, expected {} of width {h}",
                end - start
            )));
        }
        let kk = k.min(m);
        let scores = queries.clone().matmul(cands.transpose());
        let (values, indices) = scores.topk_with_indices(kk, 1);
        let values = values
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TrainerError::Data(format!("reading scores: {e:?}")))?;
        let indices: Vec<i64> = indices.into_data().iter::<i64>().collect();
        for (qi, list) in best.iter_mut().enumerate() {
            for r in 0..kk {
                list.push((values[qi * kk + r], start + indices[qi * kk + r] as usize));
            }
            list.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            list.truncate(k);
        }
        start = end;
    }
    Ok(best)
}

/// How a pool is scored: sequences per encoder batch and candidates per chunk.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub batch: usize,
    pub chunk: usize,
    pub pooling: Pool,
}

/// Ranks `candidates` for every query (top [`TOP_K`] candidate indices, best first), embedding
/// the pool once in chunks of `opts.chunk`.
pub fn rank_pool(
    encoder: &Encoder,
    config: &EncoderConfig,
    tok: &TextTokenizer,
    queries: &[PoolQuery],
    candidates: &[PoolCandidate],
    opts: PoolOptions,
    device: &Device,
) -> Result<Vec<Vec<usize>>> {
    let encoded = queries
        .iter()
        .map(|q| encode_query(tok, q))
        .collect::<Result<Vec<_>>>()?;
    let q = embed_encoded(encoder, config, &encoded, opts.batch, opts.pooling, device)?;
    drop(encoded);
    let top = top_k_streaming(&q, candidates.len(), opts.chunk, TOP_K, |range| {
        let encoded = candidates[range]
            .iter()
            .map(|c| encode_candidate(tok, c))
            .collect::<Result<Vec<_>>>()?;
        embed_encoded(encoder, config, &encoded, opts.batch, opts.pooling, device)
    })?;
    Ok(top
        .into_iter()
        .map(|l| l.into_iter().map(|(_, i)| i).collect())
        .collect())
}

/// mAP@20 ×100 of ranked candidate indices against gold index sets (the scorer of
/// `stilts-tasks`, as `stilts score` uses for Mewsli-X).
pub fn map_at_20(gold: &[Vec<usize>], ranked: &[Vec<usize>]) -> f64 {
    let targets: Vec<std::collections::HashSet<usize>> =
        gold.iter().map(|g| g.iter().copied().collect()).collect();
    let ranked: Vec<Option<Vec<usize>>> = ranked.iter().cloned().map(Some).collect();
    mean_average_precision_at_k(&targets, &ranked, TOP_K) * 100.0
}

/// Model selection on dev pairs: each dev query ranked against the distinct candidates of the
/// dev pairs (by tokens); `scores[i]` is example `i`'s query then candidate embedding.
pub fn dev_map(examples: &[Example], scores: &[Vec<f32>]) -> Result<f64> {
    let mut index: HashMap<&[u32], usize> = HashMap::new();
    let mut cands: Vec<&[f32]> = Vec::new();
    let mut gold = Vec::new();
    for (e, s) in examples.iter().zip(scores) {
        let (Some(c), true) = (e.inputs.get(1), s.len() % 2 == 0) else {
            return Err(TrainerError::Data(format!(
                "dev example {}: not a (query, candidate) pair",
                e.id
            )));
        };
        let h = s.len() / 2;
        let next = cands.len();
        let g = *index.entry(c.ids.as_slice()).or_insert(next);
        if g == next {
            cands.push(&s[h..]);
        }
        gold.push(vec![g]);
    }
    let ranked: Vec<Vec<usize>> = scores
        .iter()
        .map(|s| {
            let q = &s[..s.len() / 2];
            let mut sims: Vec<(f32, usize)> = cands
                .iter()
                .enumerate()
                .map(|(j, c)| (q.iter().zip(*c).map(|(a, b)| a * b).sum(), j))
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sims.into_iter().take(TOP_K).map(|(_, j)| j).collect()
        })
        .collect();
    Ok(map_at_20(&gold, &ranked))
}

/// The mixture group of a training example (0 outside mixtures).
pub fn group_of(e: &Example) -> usize {
    match e.target {
        Target::Pair { group } => group,
        _ => 0,
    }
}

/// One epoch of a multi-task mixture: `lengths.len().div_ceil(batch_size)` batches, each drawn
/// from one group (so in-batch negatives come from the same task) chosen with probability ∝
/// `weights[group]`; within a group batches are length-bucketed, and a group that runs out
/// starts a new shuffled pass (small tasks are oversampled, large ones subsampled).
pub fn mixture_batches<R: Rng>(
    lengths: &[usize],
    groups: &[usize],
    weights: &[f64],
    batch_size: usize,
    rng: &mut R,
) -> Vec<Vec<usize>> {
    let members: Vec<Vec<usize>> = (0..weights.len())
        .map(|g| (0..lengths.len()).filter(|&i| groups[i] == g).collect())
        .collect();
    let live: Vec<usize> = (0..weights.len())
        .filter(|&g| !members[g].is_empty() && weights[g] > 0.0)
        .collect();
    let total: f64 = live.iter().map(|&g| weights[g]).sum();
    let mut queues: Vec<VecDeque<Vec<usize>>> = vec![VecDeque::new(); weights.len()];
    let mut out = Vec::new();
    let wanted = lengths.len().div_ceil(batch_size.max(1));
    while out.len() < wanted && !live.is_empty() {
        let mut x = rng.random::<f64>() * total;
        let g = *live
            .iter()
            .find(|&&g| {
                x -= weights[g];
                x < 0.0
            })
            .unwrap_or(live.last().expect("non-empty"));
        if queues[g].is_empty() {
            let sub: Vec<usize> = members[g].iter().map(|&i| lengths[i]).collect();
            let pass = length_buckets(&sub, batch_size, Some(&mut *rng));
            queues[g].extend(
                pass.into_iter()
                    .map(|b| b.into_iter().map(|j| members[g][j]).collect::<Vec<_>>()),
            );
        }
        out.push(queues[g].pop_front().expect("refilled"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn sentences_around_an_offset() {
        let c = "Dr. Who is old. It flies! Does it? Yes.";
        assert_eq!(sentence_around(c, 0), "Dr.");
        assert_eq!(sentence_around(c, 5), "Who is old.");
        assert_eq!(sentence_around(c, 17), "It flies!");
        assert_eq!(sentence_around(c, 38), "Yes.");
        assert_eq!(sentence_around("北京是首都。上海很大。", 7), "上海很大。");
        assert_eq!(sentence_around("no end", 2), "no end");
    }

    #[test]
    fn duplicates_are_masked_off_the_diagonal() {
        let (a, b): (&[u32], &[u32]) = (&[1, 2], &[3]);
        assert_eq!(
            duplicate_mask(&[a, b, a]),
            vec![0.0, 0.0, -1e4, 0.0, 0.0, 0.0, -1e4, 0.0, 0.0]
        );
    }

    fn pair(q: u32, c: u32) -> Example {
        let enc = |id: u32| Encoded {
            ids: vec![id],
            type_ids: vec![0],
            offsets: vec![(0, 0)],
        };
        pair_example(format!("{q}-{c}"), enc(q), enc(c), 0)
    }

    #[test]
    fn in_batch_softmax_with_temperature_symmetry_and_masked_duplicates() {
        let device = Device::flex();
        // Rows q0, c0, q1, c1: q0 = c0 = e0, q1 = e1, c1 = (e0 + e1) / √2.
        let r = std::f32::consts::FRAC_1_SQRT_2;
        let emb = Tensor::<2>::from_data(
            TensorData::new(vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, r, r], [4, 2]),
            &device,
        );
        let (a, b) = (pair(1, 2), pair(3, 4));
        let batch = [&a, &b];
        let loss = |t: f64, sym: bool| -> f64 {
            in_batch_loss(emb.clone(), &batch, t, sym)
                .unwrap()
                .into_scalar::<f32>()
                .into()
        };
        let ce = |right: f64, wrong: f64| -> f64 { (wrong - right).exp().ln_1p() };
        let r = f64::from(r);
        // Query 0: sims (1, r); query 1: (0, r). Each divided by t = 0.5.
        let forward = (ce(2.0, 2.0 * r) + ce(2.0 * r, 0.0)) / 2.0;
        assert!((loss(0.5, false) - forward).abs() < 1e-5);
        // Candidate → query: candidate 0 sims (1, 0), candidate 1 sims (r, r).
        let backward = (ce(2.0, 0.0) + ce(2.0 * r, 2.0 * r)) / 2.0;
        assert!((loss(0.5, true) - (forward + backward) / 2.0).abs() < 1e-5);
        // The same candidate twice in a batch is no negative of itself.
        let (c, d) = (pair(1, 2), pair(3, 2));
        let dup = in_batch_loss(emb.clone(), &[&c, &d], 0.5, false)
            .unwrap()
            .into_scalar::<f32>();
        assert!(f64::from(dup).abs() < 1e-5, "{dup}");
    }

    #[test]
    fn mixture_draws_by_weight_and_keeps_tasks_apart() {
        let lengths = vec![10; 400];
        let groups: Vec<usize> = (0..400).map(|i| usize::from(i >= 100)).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let batches = mixture_batches(&lengths, &groups, &[3.0, 1.0], 8, &mut rng);
        assert_eq!(batches.len(), 50);
        let from_first = batches
            .iter()
            .filter(|b| {
                let g = groups[b[0]];
                assert!(b.iter().all(|&i| groups[i] == g), "a batch mixes tasks");
                g == 0
            })
            .count();
        // Weight 3:1 although the first task has a third of the second's examples.
        assert!((30..=45).contains(&from_first), "{from_first} of 50");
    }
}
