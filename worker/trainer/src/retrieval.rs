//! Zero-shot sentence retrieval (Tatoeba), XTREME's protocol: mean-pooled hidden states of one
//! layer over non-padding tokens, L2-normalised, nearest neighbour by cosine similarity (what
//! FAISS `IndexFlatL2` over unit vectors returns), top-1 accuracy ×100.

use burn::prelude::*;
use stilts_tasks::example::RetrievalSet;
use stilts_tasks::metrics::accuracy;

use crate::embed::{Pool, embed_texts};
use crate::encoder::{Encoder, EncoderConfig};
use crate::error::Result;
use crate::tokenize::TextTokenizer;

/// The layer pooled when the recipe names none: the middle one (XTREME uses 13 of 24 for
/// XLM-R large; 3 of 6 for MiniLM).
pub fn default_layer(num_layers: usize) -> usize {
    num_layers / 2
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Index of each query's most similar candidate (dot product of unit vectors = cosine; ties
/// go to the lower index).
pub fn nearest(queries: &[Vec<f32>], candidates: &[Vec<f32>]) -> Vec<usize> {
    queries
        .iter()
        .map(|q| {
            let mut best = (f32::NEG_INFINITY, 0);
            for (j, c) in candidates.iter().enumerate() {
                let s: f32 = q.iter().zip(c).map(|(a, b)| a * b).sum();
                if s > best.0 {
                    best = (s, j);
                }
            }
            best.1
        })
        .collect()
}

/// Retrieves every query's candidate with `encoder` pooled at `layer`; returns the predicted
/// candidate indices and the accuracy (×100) against `set.gold`.
pub fn retrieve(
    encoder: &Encoder,
    config: &EncoderConfig,
    tokenizer: &TextTokenizer,
    set: &RetrievalSet,
    layer: usize,
    device: &Device,
) -> Result<(Vec<usize>, f64)> {
    let embed = |texts: &[String]| -> Result<Vec<Vec<f32>>> {
        let mut v = embed_texts(
            encoder,
            config,
            tokenizer,
            texts,
            Some(layer),
            Pool::Mean,
            device,
        )?;
        v.iter_mut().for_each(|x| normalize(x));
        Ok(v)
    };
    let pred = nearest(&embed(&set.queries)?, &embed(&set.candidates)?);
    let acc = accuracy(&set.gold, &pred).unwrap_or(0.0) * 100.0;
    Ok((pred, acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_nearest_neighbour() {
        let mut q = vec![vec![1.0, 0.1], vec![0.0, 3.0]];
        let mut c = vec![vec![0.0, 1.0], vec![10.0, 0.0], vec![1.0, 1.0]];
        q.iter_mut().chain(c.iter_mut()).for_each(|v| normalize(v));
        assert_eq!(nearest(&q, &c), vec![1, 0]);
        assert_eq!(default_layer(12), 6);
    }
}
