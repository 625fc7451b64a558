//! Train/validation split and per-epoch sampling. Mirrors `Trainer._parse_n_train_n_val` /
//! `Trainer.set_dataset` (`nequip/train/trainer.py`) and `PartialSampler`
//! (`nequip/data/dataloader.py`) of nequip 0.6.2.
//!
//! Random permutations reproduce `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`
//! on the CPU bit for bit (MT19937 seeded like libtorch, Fisher–Yates with `random() % (n - i)`),
//! so the same `dataset_seed` selects the same frames as nequip, without touching libtorch's
//! global generator.

use super::error::DataError;

/// `n_train` / `n_val`: a count or a percentage string like `"70%"`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Count {
    Frames(usize),
    Percent(String),
}

impl Count {
    fn value(&self, name: &str, size: usize) -> Result<f64, DataError> {
        match self {
            Count::Frames(n) => Ok(*n as f64),
            Count::Percent(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| p / 100.0 * size as f64)
                .ok_or_else(|| {
                    DataError::option(
                        name,
                        format!(
                            "invalid value `{s}`: must be an integer or a percentage like \"70%\""
                        ),
                    )
                }),
        }
    }
    fn percent(&self) -> Option<f64> {
        match self {
            Count::Percent(s) => s.trim().strip_suffix('%')?.trim().parse().ok(),
            Count::Frames(_) => None,
        }
    }
}

/// How frames are split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMode {
    /// Random permutation seeded by `dataset_seed` (nequip's default).
    #[default]
    Random,
    /// First `n_train`, then `n_val` frames.
    Sequential,
}

/// nequip's `_parse_n_train_n_val`: counts from ints or percentages; each must be ≥ 1; two
/// percentages summing to 100 of one dataset give every frame to one of the sets.
pub fn parse_n_train_n_val(
    n_train: &Count,
    n_val: &Count,
    train_size: usize,
    val_size: usize,
) -> Result<(usize, usize), DataError> {
    let vals = [
        n_train.value("n_train", train_size)?,
        n_val.value("n_val", val_size)?,
    ];
    let mut floored = [vals[0].floor() as usize, vals[1].floor() as usize];
    for (n, name) in floored.iter().zip(["n_train", "n_val"]) {
        if *n < 1 {
            return Err(DataError::option(
                name,
                format!("must be at least 1, got {n}"),
            ));
        }
    }
    if let (Some(a), Some(b)) = (n_train.percent(), n_val.percent()) {
        if train_size == val_size
            && (a + b - 100.0).abs() < 1e-8
            && floored[0] + floored[1] != train_size
        {
            let larger = if vals[1] > vals[0] { 1 } else { 0 };
            floored[larger] += train_size - floored[0] - floored[1];
        }
    }
    Ok((floored[0], floored[1]))
}

/// libtorch's CPU generator: MT19937 seeded with the low 32 bits of the seed.
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed as u32;
        for j in 1..624 {
            state[j] = 1812433253u32
                .wrapping_mul(state[j - 1] ^ (state[j - 1] >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 { state, index: 624 }
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// `torch.randperm(n, generator=Generator().manual_seed(seed))` on the CPU (n < 2³²/20).
pub fn randperm(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Mt19937::new(seed);
    let mut r: Vec<usize> = (0..n).collect();
    for i in 0..n.saturating_sub(1) {
        let z = (rng.next_u32() as u64 % (n - i) as u64) as usize;
        r.swap(i, i + z);
    }
    r
}

/// Split options (nequip's config keys).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct SplitOptions {
    pub n_train: Count,
    pub n_val: Count,
    /// `random` (default) or `sequential`.
    #[serde(default)]
    pub train_val_split: SplitMode,
    /// Seed of the split and of the per-epoch shuffles. nequip's default is the global `seed`
    /// (the caller resolves that); 0 if absent here.
    #[serde(default)]
    pub dataset_seed: u64,
    /// Frames per training batch (nequip default 5).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Frames per validation batch (nequip default 5).
    #[serde(default = "default_batch_size")]
    pub validation_batch_size: usize,
    /// Reshuffle the training frames on every pass through them (default true).
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Training frames per epoch (default: all); must be a multiple of `batch_size`.
    #[serde(default)]
    pub n_train_per_epoch: Option<usize>,
}

fn default_batch_size() -> usize {
    5
}
fn default_true() -> bool {
    true
}

impl SplitOptions {
    /// Counts and nequip's defaults otherwise.
    pub fn new(n_train: Count, n_val: Count) -> Self {
        SplitOptions {
            n_train,
            n_val,
            train_val_split: SplitMode::Random,
            dataset_seed: 0,
            batch_size: 5,
            validation_batch_size: 5,
            shuffle: true,
            n_train_per_epoch: None,
        }
    }
}

/// The training and validation index sets and their batches per epoch (nequip's trainer data
/// loaders). Indices refer to the training dataset and to the validation dataset (the same one
/// unless a separate `validation_dataset` is used).
#[derive(Clone, Debug, PartialEq)]
pub struct Loader {
    pub train_idcs: Vec<usize>,
    pub val_idcs: Vec<usize>,
    pub options: SplitOptions,
}

impl Loader {
    /// Splits (see [`split`]) and checks the batch options.
    pub fn new(
        options: &SplitOptions,
        train_size: usize,
        val_size: Option<usize>,
    ) -> Result<Self, DataError> {
        if options.batch_size == 0 || options.validation_batch_size == 0 {
            return Err(DataError::option("batch_size", "must be at least 1"));
        }
        let (train_idcs, val_idcs) = split(options, train_size, val_size)?;
        if let Some(n) = options.n_train_per_epoch {
            if n == 0 || n > train_idcs.len() || n % options.batch_size != 0 {
                return Err(DataError::option(
                    "n_train_per_epoch",
                    format!(
                        "must be a multiple of batch_size {} between 1 and n_train {}, got {n}",
                        options.batch_size,
                        train_idcs.len()
                    ),
                ));
            }
        }
        Ok(Loader {
            train_idcs,
            val_idcs,
            options: options.clone(),
        })
    }

    /// Training batches of `epoch` (0-based), as training-dataset indices.
    pub fn train_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let n = self.train_idcs.len();
        let per_epoch = self.options.n_train_per_epoch.unwrap_or(n);
        let order = epoch_order(
            n,
            per_epoch,
            epoch,
            self.options.shuffle,
            self.options.dataset_seed,
        );
        let idx: Vec<usize> = order.iter().map(|&k| self.train_idcs[k]).collect();
        batches(&idx, self.options.batch_size)
    }

    /// Validation batches (never shuffled).
    pub fn val_batches(&self) -> Vec<Vec<usize>> {
        batches(&self.val_idcs, self.options.validation_batch_size)
    }
}

/// Training and validation frame indices (nequip's `set_dataset`). With `val_size`, the
/// validation frames index a separate validation dataset.
pub fn split(
    o: &SplitOptions,
    train_size: usize,
    val_size: Option<usize>,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let (n_train, n_val) = parse_n_train_n_val(
        &o.n_train,
        &o.n_val,
        train_size,
        val_size.unwrap_or(train_size),
    )?;
    match val_size {
        None => {
            if n_train + n_val > train_size {
                return Err(DataError::option("n_train", format!("too little data for training and validation: n_train {n_train} + n_val {n_val} > {train_size} frames; please reduce n_train and n_val")));
            }
            let idx = match o.train_val_split {
                SplitMode::Random => randperm(train_size, o.dataset_seed),
                SplitMode::Sequential => (0..train_size).collect(),
            };
            Ok((
                idx[..n_train].to_vec(),
                idx[n_train..n_train + n_val].to_vec(),
            ))
        }
        Some(vs) => {
            if n_train > train_size {
                return Err(DataError::option(
                    "n_train",
                    format!(
                        "not enough data in dataset for n_train {n_train} ({train_size} frames)"
                    ),
                ));
            }
            if n_val > vs {
                return Err(DataError::option(
                    "n_val",
                    format!(
                        "not enough data in validation dataset for n_val {n_val} ({vs} frames)"
                    ),
                ));
            }
            match o.train_val_split {
                // nequip draws both permutations from one generator in sequence
                SplitMode::Random => {
                    let mut rng = Mt19937::new(o.dataset_seed);
                    let mut perm = |n: usize| {
                        let mut r: Vec<usize> = (0..n).collect();
                        for i in 0..n.saturating_sub(1) {
                            let z = (rng.next_u32() as u64 % (n - i) as u64) as usize;
                            r.swap(i, i + z);
                        }
                        r
                    };
                    let t = perm(train_size)[..n_train].to_vec();
                    let v = perm(vs)[..n_val].to_vec();
                    Ok((t, v))
                }
                SplitMode::Sequential => Ok(((0..n_train).collect(), (0..n_val).collect())),
            }
        }
    }
}

/// nequip's `PartialSampler`: the training order of `epoch`, `num_samples_per_epoch` positions
/// into the training set, cycling through whole-dataset permutations seeded by
/// `seed + full_epoch` (restart-deterministic).
pub fn epoch_order(
    n_total: usize,
    num_samples_per_epoch: usize,
    epoch: usize,
    shuffle: bool,
    seed: u64,
) -> Vec<usize> {
    if n_total == 0 {
        return Vec::new();
    }
    let done = epoch * num_samples_per_epoch;
    let (full, start) = (done / n_total, done % n_total);
    let order = |k: usize| {
        if shuffle {
            randperm(n_total, seed + k as u64)
        } else {
            (0..n_total).collect()
        }
    };
    let mut all = order(full);
    all.extend(order(full + 1));
    all[start..start + num_samples_per_epoch.min(n_total)].to_vec()
}

/// Splits `order` into consecutive batches of `batch_size` (the last one may be smaller).
pub fn batches(order: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    order
        .chunks(batch_size.max(1))
        .map(|c| c.to_vec())
        .collect()
}
