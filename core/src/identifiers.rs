//! Indonesian identifiers (domain.md, "Identifiers"): NIK, KK, NOP, NIB,
//! KBLI, Kemendagri region codes, phone numbers and vehicle plates.
//!
//! Each is a newtype over the text the user typed. `check` returns every
//! rule the value breaks (empty when valid), so a form can report all of them
//! at once; nothing here panics on any input.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::time::CivilDate;
use crate::validation::Code;

/// Province codes in use (as of the 2022 Papua split).
pub const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65,
    71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96, 97,
];

/// Whether `code` is a real province code.
pub fn is_province(code: u8) -> bool {
    PROVINCES.contains(&code)
}

fn all_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

fn two(s: &str, at: usize) -> u8 {
    let b = s.as_bytes();
    (b[at] - b'0') * 10 + (b[at + 1] - b'0')
}

/// Sex as recorded on civil registry documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    #[autosurgeon(rename = "male")]
    Male,
    #[autosurgeon(rename = "female")]
    Female,
}

macro_rules! text_newtype {
    ($(#[$m:meta])* $name:ident) => {
        text_newtype!(@define $(#[$m])* $name);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }
    };
    // Personal identifiers: `{:?}` never shows the value, so a stray debug
    // log or panic message cannot leak it.
    (redacted $(#[$m:meta])* $name:ident) => {
        text_newtype!(@define $(#[$m])* $name);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "(…{} chars)"), self.0.chars().count())
            }
        }
    };
    (@define $(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Reconcile)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        #[serde(transparent)]
        pub struct $name(pub String);

        #[cfg(feature = "ffi")]
        uniffi::custom_newtype!($name, String);

        // Hand-written so that `Option<$name>` hydrates: the derive for
        // newtypes does not forward the scalar hooks that `Option` calls.
        impl Hydrate for $name {
            fn hydrate_string(s: &str) -> Result<Self, autosurgeon::HydrateError> {
                Ok($name(s.to_owned()))
            }
        }

        impl $name {
            /// The text as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

text_newtype!(
    redacted
    /// Nomor Induk Kependudukan: 16 digits, region of first registration,
    /// date of birth (day + 40 for women) and a serial.
    ///
    /// ```
    /// use sambung_core::identifiers::Nik;
    /// use sambung_core::validation::Code;
    /// assert!(Nik::from("3273014108900007").check().is_empty());
    /// assert_eq!(Nik::from("9973014108900000").check(), vec![Code::NikProvince, Code::NikSerial]);
    /// ```
    Nik
);
text_newtype!(
    redacted
    /// Kartu Keluarga (family card) number: 16 digits with a region prefix.
    Kk
);
text_newtype!(
    redacted
    /// Nomor Objek Pajak of PBB-P2: 18 digits, `PP.RR.DDD.VVV.BBB-SSSS.K`.
    Nop
);
text_newtype!(
    /// Nomor Induk Berusaha from OSS: 13 digits.
    Nib
);
text_newtype!(
    /// KBLI 2020 business activity code: 5 digits.
    Kbli
);
text_newtype!(
    /// Kemendagri region code: `PP`, `PP.RR`, `PP.RR.DD` or `PP.RR.DD.VVVV`.
    RegionCode
);
text_newtype!(
    redacted
    /// A phone number, `+62…` or `0…`.
    Phone
);
text_newtype!(
    redacted
    /// A vehicle registration plate, e.g. `B 1234 XYZ`.
    Plate
);

impl Nik {
    /// Every rule of domain.md this NIK breaks.
    pub fn check(&self) -> Vec<Code> {
        let s = self.0.as_str();
        if !all_digits(s, 16) {
            return vec![Code::NikFormat];
        }
        let mut codes = Vec::new();
        if !is_province(two(s, 0)) {
            codes.push(Code::NikProvince);
        }
        if self.birth().is_none() {
            codes.push(Code::NikBirthDate);
        }
        if &s[12..16] == "0000" {
            codes.push(Code::NikSerial);
        }
        codes
    }

    /// Day, month, two-digit year and sex encoded in digits 7–12, when they
    /// form a date that exists in some century (29 February only in years
    /// divisible by four, which both 1900+yy and 2000+yy share except 00).
    pub fn birth(&self) -> Option<(u8, u8, u8, Sex)> {
        let s = self.0.as_str();
        if !all_digits(s, 16) {
            return None;
        }
        let (raw_day, month, yy) = (two(s, 6), two(s, 8), two(s, 10));
        let (day, sex) = match raw_day {
            1..=31 => (raw_day, Sex::Male),
            41..=71 => (raw_day - 40, Sex::Female),
            _ => return None,
        };
        // 2000 is a leap year, so yy = 00 allows 29 February too.
        let valid = CivilDate::new(2000 + i32::from(yy), month, day).is_some();
        valid.then_some((day, month, yy, sex))
    }

    /// Whether the NIK agrees with a stated date of birth and sex.
    pub fn agrees_with(&self, birth: CivilDate, sex: Sex) -> bool {
        match self.birth() {
            Some((d, m, yy, s)) => {
                d == birth.day
                    && m == birth.month
                    && i32::from(yy) == birth.year.rem_euclid(100)
                    && s == sex
            }
            None => false,
        }
    }

    /// The province code, when the NIK is well formed.
    pub fn province(&self) -> Option<u8> {
        all_digits(&self.0, 16).then(|| two(&self.0, 0))
    }
}

impl Kk {
    /// Every rule this KK number breaks.
    pub fn check(&self) -> Vec<Code> {
        let s = self.0.as_str();
        if !all_digits(s, 16) {
            return vec![Code::KkFormat];
        }
        if !is_province(two(s, 0)) {
            return vec![Code::KkProvince];
        }
        Vec::new()
    }
}

impl Nop {
    /// The NOP with dots, dashes and spaces removed (the stored form).
    pub fn normalised(&self) -> Nop {
        Nop(self
            .0
            .chars()
            .filter(|c| !matches!(c, '.' | '-' | ' '))
            .collect())
    }

    /// Every rule this NOP breaks (after normalisation).
    pub fn check(&self) -> Vec<Code> {
        let n = self.normalised();
        let s = n.0.as_str();
        if !all_digits(s, 18) {
            return vec![Code::NopFormat];
        }
        let mut codes = Vec::new();
        if !is_province(two(s, 0)) {
            codes.push(Code::NopProvince);
        }
        if !matches!(s.as_bytes()[17], b'0' | b'7' | b'9') {
            codes.push(Code::NopSpecialCode);
        }
        codes
    }

    /// The usual written form `PP.RR.DDD.VVV.BBB-SSSS.K`, when well formed.
    pub fn formatted(&self) -> Option<String> {
        let n = self.normalised();
        let s = n.0.as_str();
        all_digits(s, 18).then(|| {
            format!(
                "{}.{}.{}.{}.{}-{}.{}",
                &s[0..2],
                &s[2..4],
                &s[4..7],
                &s[7..10],
                &s[10..13],
                &s[13..17],
                &s[17..18]
            )
        })
    }
}

impl Nib {
    /// Every rule this NIB breaks.
    pub fn check(&self) -> Vec<Code> {
        if all_digits(&self.0, 13) {
            Vec::new()
        } else {
            vec![Code::NibFormat]
        }
    }
}

impl Kbli {
    /// Every rule this KBLI code breaks.
    pub fn check(&self) -> Vec<Code> {
        if all_digits(&self.0, 5) {
            Vec::new()
        } else {
            vec![Code::KbliFormat]
        }
    }
}

/// How deep a region code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegionLevel {
    /// `PP`
    Province,
    /// `PP.RR`
    Regency,
    /// `PP.RR.DD`
    District,
    /// `PP.RR.DD.VVVV`
    Village,
}

impl RegionCode {
    /// The level, when the code is well formed.
    pub fn level(&self) -> Option<RegionLevel> {
        let parts: Vec<&str> = self.0.split('.').collect();
        let lens = [2, 2, 2, 4];
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        for (p, len) in parts.iter().zip(lens) {
            if !all_digits(p, len) {
                return None;
            }
        }
        Some(match parts.len() {
            1 => RegionLevel::Province,
            2 => RegionLevel::Regency,
            3 => RegionLevel::District,
            _ => RegionLevel::Village,
        })
    }

    /// Every rule this region code breaks.
    pub fn check(&self) -> Vec<Code> {
        if self.level().is_none() {
            return vec![Code::RegionFormat];
        }
        if !is_province(two(&self.0, 0)) {
            return vec![Code::RegionProvince];
        }
        Vec::new()
    }

    /// Like `check`, and the code must name a village.
    pub fn check_village(&self) -> Vec<Code> {
        let mut codes = self.check();
        if codes.is_empty() && self.level() != Some(RegionLevel::Village) {
            codes.push(Code::RegionLevel);
        }
        codes
    }

    /// Whether this code lies inside `prefix` (same code or a sub-region).
    pub fn is_within(&self, prefix: &RegionCode) -> bool {
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'.'))
    }

    /// The regency part `PP.RR`, when present.
    pub fn regency(&self) -> Option<&str> {
        (self.level()? >= RegionLevel::Regency).then(|| &self.0[..5])
    }
}

impl Phone {
    /// Every rule this phone number breaks. Spaces and dashes are allowed.
    pub fn check(&self) -> Vec<Code> {
        let compact: String = self.0.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let national = compact
            .strip_prefix("+62")
            .or_else(|| compact.strip_prefix('0'));
        match national {
            Some(n)
                if (9..=13).contains(&n.len())
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && !n.starts_with('0') =>
            {
                Vec::new()
            }
            _ => vec![Code::PhoneFormat],
        }
    }
}

impl Plate {
    /// Every rule this plate breaks: 1–2 letters (region), 1–4 digits, 0–3
    /// letters, separated by single spaces or written together.
    pub fn check(&self) -> Vec<Code> {
        let s: String = self.0.chars().filter(|c| *c != ' ').collect();
        let b = s.as_bytes();
        let region = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
        let digits = b[region..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let suffix = b[region + digits..]
            .iter()
            .take_while(|c| c.is_ascii_uppercase())
            .count();
        let ok = (1..=2).contains(&region)
            && (1..=4).contains(&digits)
            && suffix <= 3
            && region + digits + suffix == b.len();
        if ok {
            Vec::new()
        } else {
            vec![Code::PlateFormat]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nik_rules() {
        // 41 = day 1 + 40 → a woman born 1 August 1990.
        let nik = Nik::from("3273014108900007");
        assert!(nik.check().is_empty());
        assert!(nik.agrees_with(CivilDate::new(1990, 8, 1).unwrap(), Sex::Female));
        assert!(!nik.agrees_with(CivilDate::new(1990, 8, 1).unwrap(), Sex::Male));
        assert!(!nik.agrees_with(CivilDate::new(1991, 8, 1).unwrap(), Sex::Female));
        assert_eq!(Nik::from("327301410890000").check(), vec![Code::NikFormat]);
        assert_eq!(
            Nik::from("32730141089000０7").check(),
            vec![Code::NikFormat]
        );
        assert_eq!(
            Nik::from("2073014108900007").check(),
            vec![Code::NikProvince]
        );
        assert_eq!(
            Nik::from("3273013208900007").check(),
            vec![Code::NikBirthDate]
        );
        assert_eq!(
            Nik::from("3273017208900007").check(),
            vec![Code::NikBirthDate]
        );
        assert_eq!(
            Nik::from("3273013002900007").check(),
            vec![Code::NikBirthDate]
        );
        assert!(Nik::from("3273012902000007").check().is_empty());
        assert_eq!(
            Nik::from("3273012902010007").check(),
            vec![Code::NikBirthDate]
        );
        assert_eq!(
            Nik::from("3273011513900007").check(),
            vec![Code::NikBirthDate]
        );
        assert_eq!(Nik::from("3273011508900000").check(), vec![Code::NikSerial]);
        assert_eq!(
            Nik::from("1073017208900000").check(),
            vec![Code::NikProvince, Code::NikBirthDate, Code::NikSerial]
        );
        // Papua's 2022 provinces are real.
        assert!(Nik::from("9701011508900001").check().is_empty());
    }

    #[test]
    fn personal_identifiers_never_show_in_debug_output() {
        let nik = Nik::from("3273014108900007");
        assert_eq!(format!("{nik:?}"), "Nik(…16 chars)");
        assert!(!format!("{:?}", Some(Phone::from("+6281234567890"))).contains("812"));
        assert_eq!(
            format!("{:?}", RegionCode::from("32.73")),
            "RegionCode(\"32.73\")"
        );
    }

    #[test]
    fn nop_accepts_dotted_and_plain() {
        let dotted = Nop::from("32.73.010.001.001-0001.0");
        assert!(dotted.check().is_empty());
        assert_eq!(dotted.normalised().0, "327301000100100010");
        assert_eq!(dotted.formatted().unwrap(), "32.73.010.001.001-0001.0");
        assert_eq!(
            Nop::from("327301000100100013").check(),
            vec![Code::NopSpecialCode]
        );
        assert_eq!(
            Nop::from("997301000100100010").check(),
            vec![Code::NopProvince]
        );
        assert_eq!(Nop::from("3273010001001").check(), vec![Code::NopFormat]);
    }

    #[test]
    fn region_codes() {
        assert_eq!(RegionCode::from("32").level(), Some(RegionLevel::Province));
        assert_eq!(
            RegionCode::from("32.73.01.1001").level(),
            Some(RegionLevel::Village)
        );
        assert_eq!(
            RegionCode::from("32.73.1").check(),
            vec![Code::RegionFormat]
        );
        assert_eq!(
            RegionCode::from("32.73.01.1001.1").check(),
            vec![Code::RegionFormat]
        );
        assert_eq!(RegionCode::from("").check(), vec![Code::RegionFormat]);
        assert_eq!(
            RegionCode::from("99.01").check(),
            vec![Code::RegionProvince]
        );
        assert_eq!(
            RegionCode::from("32.73").check_village(),
            vec![Code::RegionLevel]
        );
        let v = RegionCode::from("32.73.01.1001");
        assert!(v.is_within(&RegionCode::from("32.73")));
        assert!(v.is_within(&RegionCode::from("32.73.01.1001")));
        assert!(!RegionCode::from("32.7").is_within(&RegionCode::from("32.73")));
        assert!(!RegionCode::from("32.730").is_within(&RegionCode::from("32.73")));
        assert_eq!(v.regency(), Some("32.73"));
    }

    #[test]
    fn phones_plates_and_short_codes() {
        assert!(Phone::from("+62 812-3456-7890").check().is_empty());
        assert!(Phone::from("081234567890").check().is_empty());
        assert_eq!(Phone::from("812345").check(), vec![Code::PhoneFormat]);
        assert_eq!(
            Phone::from("+6281234567890123").check(),
            vec![Code::PhoneFormat]
        );
        assert_eq!(
            Phone::from("+620812345678").check(),
            vec![Code::PhoneFormat]
        );
        assert!(Plate::from("B 1234 XYZ").check().is_empty());
        assert!(Plate::from("DK 1 A").check().is_empty());
        assert!(Plate::from("AB1234").check().is_empty());
        assert_eq!(Plate::from("1234 B").check(), vec![Code::PlateFormat]);
        assert_eq!(Plate::from("B 12345").check(), vec![Code::PlateFormat]);
        assert_eq!(Plate::from("b 1234").check(), vec![Code::PlateFormat]);
        assert!(Nib::from("1234567890123").check().is_empty());
        assert_eq!(Nib::from("123456789012").check(), vec![Code::NibFormat]);
        assert!(Kbli::from("47111").check().is_empty());
        assert_eq!(Kbli::from("4711a").check(), vec![Code::KbliFormat]);
        assert!(Kk::from("3273010101900001").check().is_empty());
        assert_eq!(Kk::from("0073010101900001").check(), vec![Code::KkProvince]);
    }

    proptest! {
        // No input makes a checker panic, and a NIK built from valid parts
        // always passes and agrees with the date it encodes.
        #[test]
        fn checkers_never_panic(s in "\\PC{0,40}") {
            let _ = Nik(s.clone()).check();
            let _ = Nik(s.clone()).birth();
            let _ = Kk(s.clone()).check();
            let _ = Nop(s.clone()).check();
            let _ = Nop(s.clone()).formatted();
            let _ = RegionCode(s.clone()).check_village();
            let _ = RegionCode(s.clone()).regency();
            let _ = Phone(s.clone()).check();
            let _ = Plate(s.clone()).check();
        }

        #[test]
        fn generated_niks_are_valid(
            p in proptest::sample::select(PROVINCES),
            days in -25_000i64..20_000,
            female: bool,
            serial in 1u32..10_000,
        ) {
            let d = CivilDate::from_days(days);
            let day = d.day + if female { 40 } else { 0 };
            let nik = Nik(format!("{p:02}7301{day:02}{:02}{:02}{serial:04}", d.month, d.year.rem_euclid(100)));
            prop_assert!(nik.check().is_empty());
            let sex = if female { Sex::Female } else { Sex::Male };
            prop_assert!(nik.agrees_with(d, sex));
        }
    }
}
