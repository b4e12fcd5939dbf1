//! Generated hostile JSON for the decoders' property tests: a valid body mutated at a random
//! place — a field dropped, renamed or added (at any depth), a value of another type, a number
//! beyond u64, a string of garbage hex, deep nesting, or the text cut short. Seeded, so a failure
//! names the seed that reproduces it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// A generator of mutations, reproducible from `seed`.
pub struct Mutator(StdRng);

impl Mutator {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }

    /// `valid` mutated once or a few times, as the text to send.
    pub fn mutate(&mut self, valid: &Value) -> String {
        let mut v = valid.clone();
        for _ in 0..self.0.gen_range(1..=3) {
            self.mutate_somewhere(&mut v);
        }
        let text = v.to_string();
        if self.0.gen_bool(0.1) {
            let cut = self.0.gen_range(0..text.len().max(1));
            return text[..text.floor_char_boundary(cut)].to_string();
        }
        text
    }

    fn mutate_somewhere(&mut self, v: &mut Value) {
        // Pick a random node (as a JSON pointer), then change it.
        let mut pointer = String::new();
        let mut node = &*v;
        while self.0.gen_bool(0.6) {
            let step = match node {
                Value::Object(map) if !map.is_empty() => {
                    let (key, next) = map.iter().nth(self.0.gen_range(0..map.len())).expect("an entry");
                    Some((key.replace('~', "~0").replace('/', "~1"), next))
                }
                Value::Array(items) if !items.is_empty() => {
                    let i = self.0.gen_range(0..items.len());
                    Some((i.to_string(), &items[i]))
                }
                _ => None,
            };
            let Some((part, next)) = step else { break };
            pointer = format!("{pointer}/{part}");
            node = next;
        }
        let node = v.pointer_mut(&pointer).expect("the pointer was just walked");
        self.change(node);
    }

    fn change(&mut self, node: &mut Value) {
        match self.0.gen_range(0..10) {
            0 => *node = json!(null),
            1 => *node = json!(self.0.r#gen::<i64>()),
            2 => *node = serde_json::from_str("18446744073709551616").expect("a number"),
            3 => *node = json!(format!("0x{}", "zz".repeat(self.0.gen_range(0..40)))),
            4 => *node = json!(-1),
            5 => *node = json!([node.clone()]),
            6 => {
                let mut deep = json!(1);
                for _ in 0..self.0.gen_range(10..200) {
                    deep = json!([deep]);
                }
                *node = deep;
            }
            7 => {
                if let Value::Object(map) = node
                    && !map.is_empty()
                {
                    let key = map.keys().nth(self.0.gen_range(0..map.len())).cloned().expect("a key");
                    map.remove(&key);
                }
            }
            8 => {
                if let Value::Object(map) = node {
                    map.insert("unexpected".into(), json!({ "x": [1, 2, 3] }));
                } else {
                    *node = json!({ "unexpected": true });
                }
            }
            _ => *node = json!("a string where something else belongs"),
        }
    }
}
