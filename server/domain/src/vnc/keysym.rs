//! X11 keysym names (from X11's `keysymdef.h`), as kb recordings write them: Latin-1, the
//! TTY, cursor, keypad, function and modifier keys. A keysym without a name here is
//! written as a Unicode-style code (`U+FE03`), as minimega does for unnamed keysyms.

/// Names and keysyms; where two names share a keysym, the first is the one written.
const NAMED: &[(&str, u32)] = &[
    ("BackSpace", 0xff08),
    ("Tab", 0xff09),
    ("Linefeed", 0xff0a),
    ("Clear", 0xff0b),
    ("Return", 0xff0d),
    ("Pause", 0xff13),
    ("Scroll_Lock", 0xff14),
    ("Sys_Req", 0xff15),
    ("Escape", 0xff1b),
    ("Delete", 0xffff),
    ("Multi_key", 0xff20),
    ("Home", 0xff50),
    ("Left", 0xff51),
    ("Up", 0xff52),
    ("Right", 0xff53),
    ("Down", 0xff54),
    ("Prior", 0xff55),
    ("Page_Up", 0xff55),
    ("Next", 0xff56),
    ("Page_Down", 0xff56),
    ("End", 0xff57),
    ("Begin", 0xff58),
    ("Select", 0xff60),
    ("Print", 0xff61),
    ("Execute", 0xff62),
    ("Insert", 0xff63),
    ("Undo", 0xff65),
    ("Redo", 0xff66),
    ("Menu", 0xff67),
    ("Find", 0xff68),
    ("Cancel", 0xff69),
    ("Help", 0xff6a),
    ("Break", 0xff6b),
    ("Mode_switch", 0xff7e),
    ("Num_Lock", 0xff7f),
    ("KP_Space", 0xff80),
    ("KP_Tab", 0xff89),
    ("KP_Enter", 0xff8d),
    ("KP_F1", 0xff91),
    ("KP_F2", 0xff92),
    ("KP_F3", 0xff93),
    ("KP_F4", 0xff94),
    ("KP_Home", 0xff95),
    ("KP_Left", 0xff96),
    ("KP_Up", 0xff97),
    ("KP_Right", 0xff98),
    ("KP_Down", 0xff99),
    ("KP_Prior", 0xff9a),
    ("KP_Page_Up", 0xff9a),
    ("KP_Next", 0xff9b),
    ("KP_Page_Down", 0xff9b),
    ("KP_End", 0xff9c),
    ("KP_Begin", 0xff9d),
    ("KP_Insert", 0xff9e),
    ("KP_Delete", 0xff9f),
    ("KP_Equal", 0xffbd),
    ("KP_Multiply", 0xffaa),
    ("KP_Add", 0xffab),
    ("KP_Separator", 0xffac),
    ("KP_Subtract", 0xffad),
    ("KP_Decimal", 0xffae),
    ("KP_Divide", 0xffaf),
    ("KP_0", 0xffb0),
    ("KP_1", 0xffb1),
    ("KP_2", 0xffb2),
    ("KP_3", 0xffb3),
    ("KP_4", 0xffb4),
    ("KP_5", 0xffb5),
    ("KP_6", 0xffb6),
    ("KP_7", 0xffb7),
    ("KP_8", 0xffb8),
    ("KP_9", 0xffb9),
    ("Shift_L", 0xffe1),
    ("Shift_R", 0xffe2),
    ("Control_L", 0xffe3),
    ("Control_R", 0xffe4),
    ("Caps_Lock", 0xffe5),
    ("Shift_Lock", 0xffe6),
    ("Meta_L", 0xffe7),
    ("Meta_R", 0xffe8),
    ("Alt_L", 0xffe9),
    ("Alt_R", 0xffea),
    ("Super_L", 0xffeb),
    ("Super_R", 0xffec),
    ("Hyper_L", 0xffed),
    ("Hyper_R", 0xffee),
    ("ISO_Level3_Shift", 0xfe03),
    ("ISO_Left_Tab", 0xfe20),
    ("space", 0x20),
    ("exclam", 0x21),
    ("quotedbl", 0x22),
    ("numbersign", 0x23),
    ("dollar", 0x24),
    ("percent", 0x25),
    ("ampersand", 0x26),
    ("apostrophe", 0x27),
    ("quoteright", 0x27),
    ("parenleft", 0x28),
    ("parenright", 0x29),
    ("asterisk", 0x2a),
    ("plus", 0x2b),
    ("comma", 0x2c),
    ("minus", 0x2d),
    ("period", 0x2e),
    ("slash", 0x2f),
    ("colon", 0x3a),
    ("semicolon", 0x3b),
    ("less", 0x3c),
    ("equal", 0x3d),
    ("greater", 0x3e),
    ("question", 0x3f),
    ("at", 0x40),
    ("bracketleft", 0x5b),
    ("backslash", 0x5c),
    ("bracketright", 0x5d),
    ("asciicircum", 0x5e),
    ("underscore", 0x5f),
    ("grave", 0x60),
    ("quoteleft", 0x60),
    ("braceleft", 0x7b),
    ("bar", 0x7c),
    ("braceright", 0x7d),
    ("asciitilde", 0x7e),
    ("nobreakspace", 0xa0),
    ("exclamdown", 0xa1),
    ("cent", 0xa2),
    ("sterling", 0xa3),
    ("currency", 0xa4),
    ("yen", 0xa5),
    ("brokenbar", 0xa6),
    ("section", 0xa7),
    ("diaeresis", 0xa8),
    ("copyright", 0xa9),
    ("ordfeminine", 0xaa),
    ("guillemotleft", 0xab),
    ("notsign", 0xac),
    ("hyphen", 0xad),
    ("registered", 0xae),
    ("macron", 0xaf),
    ("degree", 0xb0),
    ("plusminus", 0xb1),
    ("twosuperior", 0xb2),
    ("threesuperior", 0xb3),
    ("acute", 0xb4),
    ("mu", 0xb5),
    ("paragraph", 0xb6),
    ("periodcentered", 0xb7),
    ("cedilla", 0xb8),
    ("onesuperior", 0xb9),
    ("masculine", 0xba),
    ("guillemotright", 0xbb),
    ("onequarter", 0xbc),
    ("onehalf", 0xbd),
    ("threequarters", 0xbe),
    ("questiondown", 0xbf),
    ("Agrave", 0xc0),
    ("Aacute", 0xc1),
    ("Acircumflex", 0xc2),
    ("Atilde", 0xc3),
    ("Adiaeresis", 0xc4),
    ("Aring", 0xc5),
    ("AE", 0xc6),
    ("Ccedilla", 0xc7),
    ("Egrave", 0xc8),
    ("Eacute", 0xc9),
    ("Ecircumflex", 0xca),
    ("Ediaeresis", 0xcb),
    ("Igrave", 0xcc),
    ("Iacute", 0xcd),
    ("Icircumflex", 0xce),
    ("Idiaeresis", 0xcf),
    ("ETH", 0xd0),
    ("Ntilde", 0xd1),
    ("Ograve", 0xd2),
    ("Oacute", 0xd3),
    ("Ocircumflex", 0xd4),
    ("Otilde", 0xd5),
    ("Odiaeresis", 0xd6),
    ("multiply", 0xd7),
    ("Oslash", 0xd8),
    ("Ugrave", 0xd9),
    ("Uacute", 0xda),
    ("Ucircumflex", 0xdb),
    ("Udiaeresis", 0xdc),
    ("Yacute", 0xdd),
    ("THORN", 0xde),
    ("ssharp", 0xdf),
    ("agrave", 0xe0),
    ("aacute", 0xe1),
    ("acircumflex", 0xe2),
    ("atilde", 0xe3),
    ("adiaeresis", 0xe4),
    ("aring", 0xe5),
    ("ae", 0xe6),
    ("ccedilla", 0xe7),
    ("egrave", 0xe8),
    ("eacute", 0xe9),
    ("ecircumflex", 0xea),
    ("ediaeresis", 0xeb),
    ("igrave", 0xec),
    ("iacute", 0xed),
    ("icircumflex", 0xee),
    ("idiaeresis", 0xef),
    ("eth", 0xf0),
    ("ntilde", 0xf1),
    ("ograve", 0xf2),
    ("oacute", 0xf3),
    ("ocircumflex", 0xf4),
    ("otilde", 0xf5),
    ("odiaeresis", 0xf6),
    ("division", 0xf7),
    ("oslash", 0xf8),
    ("ugrave", 0xf9),
    ("uacute", 0xfa),
    ("ucircumflex", 0xfb),
    ("udiaeresis", 0xfc),
    ("yacute", 0xfd),
    ("thorn", 0xfe),
    ("ydiaeresis", 0xff),
];

/// The name of a keysym: digits and ASCII letters name themselves, F1–F35 are
/// function keys, the rest come from the table.
pub fn name_of(keysym: u32) -> Option<String> {
    match keysym {
        0x30..=0x39 | 0x41..=0x5a | 0x61..=0x7a => char::from_u32(keysym).map(String::from),
        0xffbe..=0xffe0 => Some(format!("F{}", keysym - 0xffbe + 1)),
        _ => NAMED
            .iter()
            .find(|(_, k)| *k == keysym)
            .map(|(n, _)| n.to_string()),
    }
}

/// The keysym of a name, if it is one.
pub fn keysym_of(name: &str) -> Option<u32> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_alphanumeric() {
            return Some(c as u32);
        }
    }
    if let Some(n) = name.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()) {
        if (1..=35).contains(&n) {
            return Some(0xffbe + n - 1);
        }
    }
    NAMED.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keysyms_agree() {
        for (name, k) in [
            ("a", 0x61),
            ("Z", 0x5a),
            ("7", 0x37),
            ("Return", 0xff0d),
            ("Shift_L", 0xffe1),
            ("F1", 0xffbe),
            ("F12", 0xffc9),
            ("space", 0x20),
            ("slash", 0x2f),
            ("udiaeresis", 0xfc),
        ] {
            assert_eq!(keysym_of(name), Some(k), "{name}");
            assert_eq!(name_of(k).as_deref(), Some(name), "{k:#x}");
        }
    }

    #[test]
    fn every_table_name_reads_back_to_its_keysym() {
        for (name, k) in NAMED {
            assert_eq!(keysym_of(name), Some(*k));
            assert_eq!(keysym_of(&name_of(*k).unwrap()), Some(*k));
        }
    }

    #[test]
    fn unknown_names_and_keysyms() {
        assert_eq!(keysym_of("NoSuchKey"), None);
        assert_eq!(keysym_of("F36"), None);
        assert_eq!(name_of(0x1234567), None);
    }
}
