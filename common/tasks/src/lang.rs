//! Language-code tables the file layouts need.

/// ISO 639-3 code used by the LASER Tatoeba files (XTREME's `tatoeba_preprocess` table).
pub fn iso639_3(code: &str) -> Option<&'static str> {
    Some(match code {
        "af" => "afr",
        "ar" => "ara",
        "az" => "aze",
        "bg" => "bul",
        "bn" => "ben",
        "de" => "deu",
        "el" => "ell",
        "en" => "eng",
        "es" => "spa",
        "et" => "est",
        "eu" => "eus",
        "fa" => "pes",
        "fi" => "fin",
        "fr" => "fra",
        "he" => "heb",
        "hi" => "hin",
        "hu" => "hun",
        "id" => "ind",
        "it" => "ita",
        "ja" => "jpn",
        "jv" => "jav",
        "ka" => "kat",
        "kk" => "kaz",
        "ko" => "kor",
        "lt" => "lit",
        "ml" => "mal",
        "mr" => "mar",
        "nl" => "nld",
        "pl" => "pol",
        "pt" => "por",
        "ro" => "ron",
        "ru" => "rus",
        "sw" => "swh",
        "ta" => "tam",
        "te" => "tel",
        "th" => "tha",
        "tl" => "tgl",
        "tr" => "tur",
        "uk" => "ukr",
        "ur" => "urd",
        "vi" => "vie",
        "zh" => "cmn",
        _ => return None,
    })
}

/// TyDiQA's language names (id prefixes such as `swahili-123…`, per-language dev file names).
pub fn tydiqa_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "ar" => "arabic",
        "bn" => "bengali",
        "en" => "english",
        "fi" => "finnish",
        "id" => "indonesian",
        "ko" => "korean",
        "ru" => "russian",
        "sw" => "swahili",
        "te" => "telugu",
        _ => return None,
    })
}
