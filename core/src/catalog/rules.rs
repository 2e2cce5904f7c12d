//! The rule language of service definitions: JSONLogic, evaluated by the
//! pinned `datalogic-rs`, plus our operators for the Indonesian identifiers.
//! The phone and the server run this one engine, so they cannot disagree.
//!
//! A rule sees the form's values as its data (`{"var": "field"}`,
//! `{"var": "group.sub"}`), `today` (`YYYY-MM-DD`, the date in Indonesia),
//! and inside a repeat the current entry as `item` (`{"var": "item.nik"}`).
//!
//! Our operators, for definitions to use (each answers `null` when its
//! input is missing or malformed, which JSONLogic treats as false):
//!
//! | operator | arguments | answer |
//! |---|---|---|
//! | `nik_birth_date` | NIK, today | the birth date in the NIK (`YYYY-MM-DD`, the century that is not in the future) |
//! | `nik_sex` | NIK | `"male"` or `"female"` |
//! | `nik_agrees` | NIK, birth date, sex, today | false only when all are well formed (the birth date not after today) and disagree |
//! | `age_years` | date, today | whole years from the date to today |
//! | `days_between` | from, to | days from the first date to the second |
//! | `in_region` | code, prefix… | whether the region code lies in one of the prefixes |

use std::sync::OnceLock;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{ArenaExt, CustomOperator, DataValue, Engine, Logic};
use serde_json::Value;

use crate::identifiers::{Nik, RegionCode, Sex};
use crate::time::CivilDate;

/// Names a rule may read besides the form's fields.
pub const RESERVED: &[&str] = &["today", "item"];

/// Our operators' names, for the lint and for authoring tools.
pub const OPERATORS: &[&str] = &[
    "nik_birth_date",
    "nik_sex",
    "nik_agrees",
    "age_years",
    "days_between",
    "in_region",
];

/// The one engine, with our operators, built once.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::builder()
            .add_operator("nik_birth_date", NikBirthDate)
            .add_operator("nik_sex", NikSex)
            .add_operator("nik_agrees", NikAgrees)
            .add_operator("age_years", AgeYears)
            .add_operator("days_between", DaysBetween)
            .add_operator("in_region", InRegion)
            .build()
    })
}

/// JSONLogic's standard operators, those `json-logic-js` also has: a rule
/// may use only these and [`OPERATORS`], so the web console evaluates
/// every rule the phone does (datalogic-rs has more; using one would make
/// the two engines disagree).
pub const STANDARD: &[&str] = &[
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    ">",
    ">=",
    "<",
    "<=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "map",
    "filter",
    "reduce",
    "all",
    "some",
    "none",
    "merge",
    "in",
    "cat",
    "substr",
];

/// Operators whose later arguments run once per element of the first.
const ITERATING: &[&str] = &["map", "filter", "reduce", "all", "some", "none"];

/// Compiles a rule; the error names what the engine refused, or the first
/// operator that is not the catalog's.
pub fn compile(rule: &Value) -> Result<Logic, String> {
    if let Some(op) = operators(rule)
        .into_iter()
        .find(|op| !STANDARD.contains(&op.as_str()) && !OPERATORS.contains(&op.as_str()))
    {
        return Err(format!("{op} is not an operator of the catalog's rules"));
    }
    engine()
        .compile(&rule.to_string())
        .map_err(|e| e.to_string())
}

/// Every operator a rule names, in order; an object of more than one key
/// is reported as `{a,b}` (JSONLogic has no such rule).
pub fn operators(rule: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_ops(rule, &mut out);
    out
}

fn walk_ops(rule: &Value, out: &mut Vec<String>) {
    match rule {
        Value::Array(items) => items.iter().for_each(|i| walk_ops(i, out)),
        Value::Object(map) if map.len() == 1 => {
            for (op, args) in map {
                out.push(op.clone());
                walk_ops(args, out);
            }
        }
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            out.push(format!("{{{}}}", keys.join(",")));
        }
        _ => {}
    }
}

/// A variable a rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The path as written (`a`, `a.b`, `item.c`; inside an iteration,
    /// relative to the element; `""` is the element itself).
    pub path: String,
    /// Inside `map`/`filter`/`all`/`some`/`none`/`reduce`: the path of the
    /// list iterated, or `None` when that list is not a plain `var`.
    pub over: Option<Option<String>>,
}

/// Every variable a rule reads (`var` and `missing` arguments), each with
/// the list it is read from inside an iteration, for the lint's check that
/// each names a field. Inside `reduce`, `accumulator` is the running value
/// and `current.x` reads the element.
pub fn variables(rule: &Value) -> Vec<Read> {
    let mut out = Vec::new();
    collect_vars(rule, None, &mut out);
    out
}

/// Where a read happens: inside an iteration, the list iterated and
/// whether it is `reduce` (whose body sees `current` and `accumulator`).
type Within<'a> = Option<(&'a Option<String>, bool)>;

fn collect_vars(rule: &Value, within: Within<'_>, out: &mut Vec<Read>) {
    let over = within.map(|(list, _)| list);
    let reduce_scope = within.is_some_and(|(_, reduce)| reduce);
    let push = |out: &mut Vec<Read>, path: &str| {
        let path = match path {
            "accumulator" | "current" if reduce_scope => return,
            p if reduce_scope => p.strip_prefix("current.").unwrap_or(p),
            p => p,
        };
        out.push(Read {
            path: path.to_owned(),
            over: over.cloned(),
        })
    };
    match rule {
        Value::Array(items) => items.iter().for_each(|i| collect_vars(i, within, out)),
        Value::Object(map) => {
            for (op, args) in map {
                match (op.as_str(), args) {
                    ("var", Value::String(p)) => push(out, p),
                    ("var", Value::Array(a)) => match a.first() {
                        Some(Value::String(p)) => push(out, p),
                        _ => collect_vars(args, within, out),
                    },
                    ("missing", Value::Array(a)) => {
                        for p in a {
                            match p {
                                Value::String(p) => push(out, p),
                                other => collect_vars(other, within, out),
                            }
                        }
                    }
                    (op, Value::Array(a)) if ITERATING.contains(&op) && !a.is_empty() => {
                        collect_vars(&a[0], within, out);
                        let list = match &a[0] {
                            Value::Object(m) if m.len() == 1 => match m.get("var") {
                                Some(Value::String(p)) => Some(p.clone()),
                                _ => None,
                            },
                            _ => None,
                        };
                        let reduce = op == "reduce";
                        if let Some(body) = a.get(1) {
                            collect_vars(body, Some((&list, reduce)), out);
                        }
                        // reduce's initial value is read outside the loop.
                        a.iter().skip(2).for_each(|x| collect_vars(x, within, out));
                    }
                    _ => collect_vars(args, within, out),
                }
            }
        }
        _ => {}
    }
}

/// The rule's answer as a boolean, by the engine's truthiness.
pub fn truthy(value: &DataValue<'_>) -> bool {
    engine().truthy(value)
}

fn date_arg(v: Option<&&DataValue<'_>>) -> Option<CivilDate> {
    v.and_then(|v| v.as_str()).and_then(CivilDate::parse)
}

fn nik_arg(v: Option<&&DataValue<'_>>) -> Option<Nik> {
    v.and_then(|v| v.as_str()).map(|s| Nik(s.to_owned()))
}

/// The birth date a NIK encodes, in the latest century not after `today`.
pub fn nik_birth_date(nik: &Nik, today: CivilDate) -> Option<CivilDate> {
    let (day, month, yy, _) = nik.birth()?;
    let recent = CivilDate::new(2000 + i32::from(yy), month, day);
    match recent {
        Some(d) if d <= today => Some(d),
        _ => CivilDate::new(1900 + i32::from(yy), month, day),
    }
}

struct NikBirthDate;

impl CustomOperator for NikBirthDate {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let (Some(nik), Some(today)) = (nik_arg(args.first()), date_arg(args.get(1))) else {
            return Ok(arena.null());
        };
        Ok(match nik_birth_date(&nik, today) {
            Some(d) => arena.string(&d.to_string()),
            None => arena.null(),
        })
    }
}

struct NikSex;

impl CustomOperator for NikSex {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        Ok(match nik_arg(args.first()).and_then(|n| n.birth()) {
            Some((_, _, _, Sex::Male)) => arena.string("male"),
            Some((_, _, _, Sex::Female)) => arena.string("female"),
            None => arena.null(),
        })
    }
}

struct NikAgrees;

impl CustomOperator for NikAgrees {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let nik = nik_arg(args.first()).filter(|n| n.check().is_empty());
        let today = date_arg(args.get(3));
        let birth = date_arg(args.get(1)).filter(|b| today.is_none_or(|t| b <= &t));
        let sex = match args.get(2).and_then(|v| v.as_str()) {
            Some("male") => Some(Sex::Male),
            Some("female") => Some(Sex::Female),
            _ => None,
        };
        Ok(match (nik, birth, sex) {
            (Some(n), Some(b), Some(s)) => arena.bool(n.agrees_with(b, s)),
            _ => arena.bool(true),
        })
    }
}

/// Whole years from `from` to `to`.
pub fn age_years(from: CivilDate, to: CivilDate) -> i64 {
    let mut years = i64::from(to.year) - i64::from(from.year);
    if (to.month, to.day) < (from.month, from.day) {
        years -= 1;
    }
    years
}

struct AgeYears;

impl CustomOperator for AgeYears {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        Ok(match (date_arg(args.first()), date_arg(args.get(1))) {
            (Some(from), Some(to)) => arena.i64(age_years(from, to)),
            _ => arena.null(),
        })
    }
}

struct DaysBetween;

impl CustomOperator for DaysBetween {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        Ok(match (date_arg(args.first()), date_arg(args.get(1))) {
            (Some(from), Some(to)) => arena.i64(to.to_days() - from.to_days()),
            _ => arena.null(),
        })
    }
}

struct InRegion;

impl CustomOperator for InRegion {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let Some(code) = args.first().and_then(|v| v.as_str()) else {
            return Ok(arena.null());
        };
        let code = RegionCode::from(code);
        let inside = args[1..]
            .iter()
            .filter_map(|p| p.as_str())
            .any(|p| code.is_within(&RegionCode::from(p)));
        Ok(arena.bool(inside))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(rule: Value, data: Value) -> String {
        engine()
            .eval_str(&rule.to_string(), &data.to_string())
            .unwrap()
    }

    #[test]
    fn our_operators_answer() {
        let today = json!("2026-12-03");
        // 31 Aug 1990, female (day + 40).
        let nik = json!("3201027108900001");
        assert_eq!(
            eval(
                json!({"nik_birth_date": [{"var": "n"}, {"var": "t"}]}),
                json!({"n": nik, "t": today})
            ),
            "\"1990-08-31\""
        );
        assert_eq!(
            eval(json!({"nik_sex": [{"var": "n"}]}), json!({"n": nik})),
            "\"female\""
        );
        assert_eq!(
            eval(
                json!({"nik_agrees": ["3201027108900001", "1990-08-31", "male"]}),
                json!({})
            ),
            "false"
        );
        assert_eq!(
            eval(
                json!({"nik_agrees": ["3201027108900001", "1990-08-31", "female"]}),
                json!({})
            ),
            "true"
        );
        // A birth date after today cannot be judged against the NIK.
        assert_eq!(
            eval(
                json!({"nik_agrees": ["3201027108900001", "2090-08-31", "male", "2026-12-03"]}),
                json!({})
            ),
            "true"
        );
        assert_eq!(
            eval(
                json!({"age_years": ["2000-12-04", "2026-12-03"]}),
                json!({})
            ),
            "25"
        );
        assert_eq!(
            eval(
                json!({"age_years": ["2000-12-03", "2026-12-03"]}),
                json!({})
            ),
            "26"
        );
        assert_eq!(
            eval(
                json!({"days_between": ["2026-11-01", "2026-12-03"]}),
                json!({})
            ),
            "32"
        );
        assert_eq!(
            eval(json!({"in_region": ["32.01.05.2001", "32.01"]}), json!({})),
            "true"
        );
        assert_eq!(
            eval(json!({"in_region": ["32.010", "32.01"]}), json!({})),
            "false"
        );
        // Malformed input answers null, never an error.
        assert_eq!(
            eval(json!({"nik_birth_date": ["12", "x"]}), json!({})),
            "null"
        );
        assert_eq!(eval(json!({"age_years": [3, null]}), json!({})), "null");
    }

    #[test]
    fn a_missing_variable_is_null_not_an_error() {
        assert_eq!(eval(json!({"var": "absent"}), json!({})), "null");
    }

    #[test]
    fn unknown_operators_do_not_compile() {
        assert!(compile(&json!({"no_such_op": [1]})).is_err());
        // datalogic-rs has it, json-logic-js does not: refused.
        assert!(compile(&json!({"length": [[1, 2]]})).is_err());
        assert!(compile(&json!({"==": [1, 1], "!=": [1, 2]})).is_err());
        assert!(compile(&json!({"nik_sex": [{"var": "x"}]})).is_ok());
    }

    #[test]
    fn variables_are_found_everywhere_in_a_rule() {
        let rule = json!({"and": [
            {"==": [{"var": "a"}, 1]},
            {"missing": ["b", "c.d"]},
            {"var": ["item.e", 0]},
            {"if": [{"var": "f"}, {"nik_sex": [{"var": "g"}]}, null]}
        ]});
        let paths: Vec<String> = variables(&rule).into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["a", "b", "c.d", "item.e", "f", "g"]);
        assert!(variables(&rule).iter().all(|r| r.over.is_none()));
    }

    #[test]
    fn reads_inside_an_iteration_are_of_the_element() {
        let rule = json!({"and": [
            {"some": [{"var": "members"}, {"==": [{"var": "relationship"}, "head"]}]},
            {"reduce": [{"var": "members"}, {"+": [{"var": "accumulator"}, {"var": "current.age"}]}, 0]},
            {"all": [{"merge": [[1], [2]]}, {"var": ""}]}
        ]});
        let reads = variables(&rule);
        let of = |p: &str| reads.iter().find(|r| r.path == p).cloned();
        assert_eq!(of("members").unwrap().over, None);
        assert_eq!(
            of("relationship").unwrap().over,
            Some(Some("members".into()))
        );
        assert_eq!(of("age").unwrap().over, Some(Some("members".into())));
        assert!(of("accumulator").is_none());
        assert_eq!(of("").unwrap().over, Some(None));
    }
}
