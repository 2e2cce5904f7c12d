//! A form's values (JSON) as the rule engine's data, and the checks of the
//! two field types the identifiers module does not have.

use datalogic_rs::DataValue;
use datalogic_rs::bumpalo::Bump;
use datalogic_rs::datavalue::NumberValue;
use serde_json::{Map, Number, Value};

use crate::validation::Code;

/// No answer: absent or `null`. Anything else is an answer and is checked
/// (a blank text is refused, as the compiled-in kinds refuse it; apps send
/// `null` for a cleared field).
pub fn is_empty(value: &Value) -> bool {
    value.is_null()
}

/// The object's members as arena pairs (the top level of a rule's data).
pub fn pairs<'a>(object: &Map<String, Value>, arena: &'a Bump) -> Vec<(&'a str, DataValue<'a>)> {
    let mut out = Vec::with_capacity(object.len() + 2);
    for (k, v) in object {
        out.push((&*arena.alloc_str(k), to_data(v, arena)));
    }
    out
}

/// A JSON value as arena data, built in the arena alone (no heap
/// allocation per list or object: a keystroke converts the whole form).
pub fn to_data<'a>(value: &Value, arena: &'a Bump) -> DataValue<'a> {
    match value {
        Value::Null => DataValue::Null,
        Value::Bool(b) => DataValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => DataValue::Number(NumberValue::from_i64(i)),
            None => DataValue::Number(NumberValue::from_f64(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => DataValue::String(arena.alloc_str(s)),
        Value::Array(items) => {
            DataValue::Array(arena.alloc_slice_fill_iter(items.iter().map(|i| to_data(i, arena))))
        }
        Value::Object(o) => DataValue::Object(
            arena.alloc_slice_fill_iter(
                o.iter()
                    .map(|(k, v)| (&*arena.alloc_str(k), to_data(v, arena))),
            ),
        ),
    }
}

/// Arena data back as JSON (a calculated value).
pub fn from_data(value: &DataValue<'_>) -> Value {
    match value {
        DataValue::Null => Value::Null,
        DataValue::Bool(b) => Value::Bool(*b),
        DataValue::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Number::from_f64(n.as_f64()).map_or(Value::Null, Value::Number),
        },
        DataValue::String(s) => Value::String((*s).to_owned()),
        DataValue::Array(items) => Value::Array(items.iter().map(from_data).collect()),
        DataValue::Object(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), from_data(v)))
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

/// An e-mail address: one `@`, a local part, a dotted domain, no spaces.
pub fn check_email(s: &str) -> Vec<Code> {
    let ok = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && s.len() <= 254
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Vec::new()
    } else {
        vec![Code::EmailFormat]
    }
}

/// An NPWP: 15 digits (the old form, often written `00.000.000.0-000.000`)
/// or 16 (the NIK-based form since 2024).
pub fn check_npwp(s: &str) -> Vec<Code> {
    let digits: String = s.chars().filter(|c| !matches!(c, '.' | '-')).collect();
    if matches!(digits.len(), 15 | 16) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Vec::new()
    } else {
        vec![Code::NpwpFormat]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn emails_and_npwp() {
        assert!(check_email("lurah@desa-sukamaju.go.id").is_empty());
        for bad in ["", "a@b", "@b.id", "a b@c.id", "a@@c.id", "a@.id"] {
            assert_eq!(check_email(bad), [Code::EmailFormat], "{bad}");
        }
        assert!(check_npwp("01.234.567.8-901.000").is_empty());
        assert!(check_npwp("3201021508900001").is_empty());
        assert_eq!(check_npwp("01.234.567"), [Code::NpwpFormat]);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Values cross into the engine and back unchanged.
        #[test]
        fn data_round_trips(v in json_value()) {
            let arena = Bump::new();
            let d = to_data(&v, &arena);
            prop_assert_eq!(from_data(&d), v);
        }
    }
}
