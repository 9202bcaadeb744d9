//! Asset index of a symbol in a few steps whatever the asset count (up to v2's 1024): the fast
//! path looks up every frame's `s`, and a scan over 127 assets cost ~60 ns for the last one,
//! as much as a third of the rest of a frame's parse and encode.
//!
//! Open addressing on a hash of the symbol's length and its first and last 8 bytes (which tell
//! exchange symbols apart), then one full comparison on a hit.

/// Symbols in wire order, found by content.
#[derive(Debug, Clone)]
pub struct SymbolIndex {
    symbols: Vec<Vec<u8>>,
    /// Asset index + 1 per slot; 0 = empty. At most half full, so a probe ends quickly.
    slots: Vec<u16>,
    shift: u32,
}

fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

fn hash(s: &[u8]) -> u64 {
    let tail = &s[s.len().saturating_sub(8)..];
    (word(s) ^ word(tail).rotate_left(29) ^ s.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl SymbolIndex {
    /// Builds the index; a symbol given twice is found at its first index. More than 65 535
    /// symbols are not indexed past that count (no wire format carries so many).
    pub fn new<S: AsRef<[u8]>>(symbols: &[S]) -> Self {
        let symbols: Vec<Vec<u8>> = symbols
            .iter()
            .take(usize::from(u16::MAX))
            .map(|s| s.as_ref().to_vec())
            .collect();
        let size = (2 * symbols.len()).next_power_of_two().max(8);
        let mut index = SymbolIndex {
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
            symbols,
        };
        for (i, s) in index.symbols.iter().enumerate() {
            let mut at = index.home(s);
            loop {
                match index.slots[at] {
                    0 => {
                        // i < u16::MAX by the take() above.
                        index.slots[at] = (i + 1) as u16;
                        break;
                    }
                    k if index.symbols[usize::from(k) - 1] == *s => break,
                    _ => at = (at + 1) & (size - 1),
                }
            }
        }
        index
    }

    fn home(&self, s: &[u8]) -> usize {
        (hash(s) >> self.shift) as usize
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The asset index of `symbol`, if it is one of ours.
    pub fn find(&self, symbol: &[u8]) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut at = self.home(symbol);
        loop {
            match self.slots[at] {
                0 => return None,
                k => {
                    let i = usize::from(k) - 1;
                    if self.symbols[i] == symbol {
                        return Some(i);
                    }
                }
            }
            at = (at + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_symbol_and_nothing_else() {
        let mut syms: Vec<String> = (0..127).map(|i| format!("S{i}USDT")).collect();
        syms.extend(["BTCUSDT", "1000PEPEUSDT", "1000SHIBUSDT", "A", ""].map(String::from));
        let ix = SymbolIndex::new(&syms);
        assert_eq!(ix.len(), syms.len());
        for (i, s) in syms.iter().enumerate() {
            assert_eq!(ix.find(s.as_bytes()), Some(i), "{s}");
        }
        for s in [
            "ETHUSDT",
            "S127USDT",
            "1000PEPEUSD",
            "BTCUSDT ",
            "a",
            "S1USDTS1USDT",
        ] {
            assert_eq!(ix.find(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn a_repeated_symbol_is_found_at_its_first_index_and_an_empty_index_finds_nothing() {
        let ix = SymbolIndex::new(&["ETHUSDT", "BTCUSDT", "ETHUSDT"]);
        assert_eq!(ix.find(b"ETHUSDT"), Some(0));
        assert_eq!(ix.find(b"BTCUSDT"), Some(1));
        let none = SymbolIndex::new::<&str>(&[]);
        assert!(none.is_empty());
        assert_eq!(none.find(b"BTCUSDT"), None);
    }
}
