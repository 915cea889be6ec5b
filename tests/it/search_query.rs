//! The query language and the label hierarchy through the library's public API: what
//! `phototag search` promises (precedence, quoting, positioned errors, `dog` = every breed
//! and no hot dog, `cat` = tabbies and lions and no catamaran).

use phototag_light::search::{parse, Hierarchy, Query, QueryError};

fn class_names(term: &str) -> Vec<&'static str> {
    Hierarchy::get()
        .resolve(term)
        .classes
        .iter()
        .map(|&c| phototag_light::labels::class(c).unwrap().name)
        .collect()
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let show = |q: &str| parse(q).unwrap().to_string();
    assert_eq!(show("a OR b c"), "(a OR (b AND c))");
    assert_eq!(show("a b OR c"), "((a AND b) OR c)");
    assert_eq!(show("NOT a OR b"), "(NOT a OR b)");
    assert_eq!(show("-(a OR b) c"), "(NOT (a OR b) AND c)");
    assert_eq!(
        show("(beach OR seashore) -people"),
        "((beach OR seashore) AND NOT people)"
    );
}

#[test]
fn quotes_and_thresholds() {
    let show = |q: &str| parse(q).unwrap().to_string();
    assert_eq!(show("\"golden retriever\""), "\"golden retriever\"");
    assert_eq!(
        show("\"golden retriever\">0.5 -\"tiger cat\""),
        "(\"golden retriever\">0.5 AND NOT \"tiger cat\")"
    );
    assert_eq!(show("dog>50%"), "dog>0.5");
    assert_eq!(show("\"NOT\""), "\"NOT\"", "a quoted operator is a word");
}

#[test]
fn errors_point_at_the_position() {
    let err = |q: &str| parse(q).unwrap_err().to_string();
    assert_eq!(err("(dog OR cat"), "syntax error at 12: expected ')'");
    assert_eq!(err("dog OR"), "syntax error at 7: expected a term");
    assert_eq!(
        err("dog AND (OR cat)"),
        "syntax error at 10: expected a term before OR"
    );
    assert_eq!(
        err("\"golden retriever"),
        "syntax error at 18: expected '\"' to close the quote"
    );
    let QueryError::Syntax { error, query } = Query::compile("dog)", 0.0).unwrap_err();
    assert_eq!((error.pos, query.as_str()), (4, "dog)"));
}

#[test]
fn dog_covers_pug_and_corgis_and_not_hot_dog() {
    let dogs = class_names("dog");
    assert_eq!(dogs.len(), 118);
    for breed in [
        "pug",
        "Pembroke",
        "Cardigan",
        "Chihuahua",
        "golden retriever",
        "Mexican hairless",
    ] {
        assert!(dogs.contains(&breed), "{breed}");
    }
    assert!(!dogs.contains(&"hotdog"));
    assert_eq!(class_names("hot dog"), ["hotdog"]);
    assert_eq!(class_names("dogs"), dogs);
    assert_eq!(class_names("Dog"), dogs);
}

#[test]
fn cat_covers_tabby_and_big_cats_not_catamaran() {
    let cats = class_names("cat");
    for c in [
        "tabby",
        "tiger cat",
        "Persian cat",
        "Siamese cat",
        "Egyptian cat",
        "lion",
        "tiger",
    ] {
        assert!(cats.contains(&c), "{c}");
    }
    assert!(!cats.contains(&"catamaran"));
    assert!(class_names("catamaran").contains(&"catamaran"));
}

#[test]
fn everyday_words_cover_many_classes() {
    for (word, at_least) in [
        ("bird", 50),
        ("vehicle", 50),
        ("food", 30),
        ("fruit", 10),
        ("instrument", 30),
        ("building", 10),
        ("animal", 390),
        ("car", 10),
        ("fish", 10),
        ("insect", 20),
    ] {
        let n = class_names(word).len();
        assert!(n >= at_least, "{word}: {n} classes");
    }
}

#[test]
fn a_word_that_matches_nothing_gets_suggestions() {
    let q = Query::compile("retriver OR catt", 0.0).unwrap();
    let unknown: Vec<_> = q.unknown().collect();
    assert_eq!(unknown.len(), 2);
    assert!(
        unknown[0].suggestions.contains(&"retriever"),
        "{:?}",
        unknown[0].suggestions
    );
    assert!(
        unknown[1].suggestions.contains(&"cat"),
        "{:?}",
        unknown[1].suggestions
    );
}
