//! Tokenizers from `tokenizer.json` (the `tokenizers` crate): single sentences and sentence
//! pairs with longest-first truncation and character offsets. Any padding/truncation preset in
//! the file (all-MiniLM-L6-v2 pads every input to 128) is replaced: batches pad dynamically.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use crate::error::{Result, TrainerError};

/// One tokenized input (special tokens included, unpadded).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// Segment ids: 0 for the first text, 1 for the second (as the tokenizer's template says).
    pub type_ids: Vec<u32>,
    /// Character offsets of each token in its own text; `(0, 0)` for special tokens.
    pub offsets: Vec<(usize, usize)>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A special token of the template: `(id, segment id)`.
pub type SpecialPiece = (u32, u32);

/// One piece of the tokenizer's template for a text pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePiece {
    Special { id: u32, type_id: u32 },
    First { type_id: u32 },
    Second { type_id: u32 },
}

/// A loaded `tokenizer.json`, truncating to `max_len` tokens.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without truncation (QA contexts are windowed by hand).
    plain: Tokenizer,
    path: PathBuf,
    max_len: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; inputs are truncated to `max_len` tokens, special tokens included.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(TrainerError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer.json not found"),
            ));
        }
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| TrainerError::bad_file(path, format!("cannot load tokenizer: {e}")))?;
        inner.with_padding(None);
        let mut plain = inner.clone();
        plain
            .with_truncation(None)
            .map_err(|e| TrainerError::bad_file(path, e.to_string()))?;
        let mut tok = Self {
            inner,
            plain,
            path: path.to_path_buf(),
            max_len: 0,
        };
        tok.set_max_len(max_len)?;
        Ok(tok)
    }

    /// Changes the truncation length.
    pub fn set_max_len(&mut self, max_len: usize) -> Result<()> {
        if max_len < 4 {
            return Err(TrainerError::Config(format!(
                "max_seq_len {max_len} is too small"
            )));
        }
        self.inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..Default::default()
            }))
            .map_err(|e| TrainerError::bad_file(&self.path, e.to_string()))?;
        self.max_len = max_len;
        Ok(())
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of ids the tokenizer can produce (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The padding id: the id of `[PAD]` or `<pad>`, else 0.
    pub fn pad_id(&self) -> u32 {
        ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| self.inner.token_to_id(t))
            .unwrap_or(0)
    }

    /// Tokenizes one text or a pair, with special tokens, truncated longest-first.
    pub fn encode(&self, text_a: &str, text_b: Option<&str>) -> Result<Encoded> {
        let enc = match text_b {
            None => self.inner.encode_char_offsets(text_a, true),
            Some(b) => self.inner.encode_char_offsets((text_a, b), true),
        }
        .map_err(|e| TrainerError::Tokenize(e.to_string()))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
    }

    /// Sub-token ids of each word of a pre-split sentence, each word tokenized on its own
    /// without special tokens (as XTREME's `utils_tag.py`); a word that yields no sub-token
    /// gets the unknown token, so every word keeps a first sub-token.
    pub fn word_pieces(&self, words: &[String]) -> Result<Vec<Vec<u32>>> {
        let unk = ["[UNK]", "<unk>"]
            .iter()
            .find_map(|t| self.inner.token_to_id(t))
            .unwrap_or(0);
        let encs = self
            .inner
            .encode_batch(words.iter().map(String::as_str).collect::<Vec<_>>(), false)
            .map_err(|e| TrainerError::Tokenize(e.to_string()))?;
        Ok(encs
            .iter()
            .map(|e| match e.get_ids() {
                [] => vec![unk],
                ids => ids.to_vec(),
            })
            .collect())
    }

    /// The special tokens the tokenizer puts before and after a single text
    /// (`[CLS]` / `[SEP]`, `<s>` / `</s>`, XLNet's none / `<sep> <cls>`).
    pub fn specials(&self) -> Result<(Vec<u32>, Vec<u32>)> {
        let (pre, post) = self.special_pieces()?;
        let ids = |v: &[(u32, u32)]| v.iter().map(|p| p.0).collect();
        Ok((ids(&pre), ids(&post)))
    }

    /// As [`TextTokenizer::specials`], each token with its segment id (XLNet's `<cls>`: 2).
    pub fn special_pieces(&self) -> Result<(Vec<SpecialPiece>, Vec<SpecialPiece>)> {
        let enc = self
            .inner
            .encode("a", true)
            .map_err(|e| TrainerError::Tokenize(e.to_string()))?;
        let mask = enc.get_special_tokens_mask();
        let pieces: Vec<(u32, u32)> = enc
            .get_ids()
            .iter()
            .copied()
            .zip(enc.get_type_ids().iter().copied())
            .collect();
        let lead = mask.iter().take_while(|&&m| m == 1).count();
        let trail = mask.iter().rev().take_while(|&&m| m == 1).count();
        Ok((
            pieces[..lead].to_vec(),
            pieces[pieces.len() - trail.min(pieces.len() - lead)..].to_vec(),
        ))
    }

    /// Tokenizes a text without special tokens and without truncation (character offsets into
    /// `text`).
    pub fn encode_plain(&self, text: &str) -> Result<Encoded> {
        let enc = self
            .plain
            .encode_char_offsets(text, false)
            .map_err(|e| TrainerError::Tokenize(e.to_string()))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
    }

    /// How the tokenizer lays out a pair: `[CLS] A [SEP] B [SEP]`, `<s> A </s></s> B </s>`, …
    pub fn pair_template(&self) -> Result<Vec<TemplatePiece>> {
        let enc = self
            .plain
            .encode(("a", "b"), true)
            .map_err(|e| TrainerError::Tokenize(e.to_string()))?;
        let mut out: Vec<TemplatePiece> = Vec::new();
        for (i, seq) in enc.get_sequence_ids().into_iter().enumerate() {
            let (id, type_id) = (enc.get_ids()[i], enc.get_type_ids()[i]);
            let piece = match seq {
                None => TemplatePiece::Special { id, type_id },
                Some(0) => TemplatePiece::First { type_id },
                Some(_) => TemplatePiece::Second { type_id },
            };
            let repeat = matches!(
                (out.last(), piece),
                (
                    Some(TemplatePiece::First { .. }),
                    TemplatePiece::First { .. }
                ) | (
                    Some(TemplatePiece::Second { .. }),
                    TemplatePiece::Second { .. }
                )
            );
            if !repeat {
                out.push(piece);
            }
        }
        Ok(out)
    }
}
