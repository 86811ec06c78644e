//! The palette and the rule that gives each user a color.

/// Sixteen colors, each with a WCAG 2 contrast ratio of at least 4.5:1 against white, so
/// white initials on an avatar meet WCAG AA for text of any size (checked by a test below).
pub const PALETTE: [&str; 16] = [
    "#D32F2F", "#1976D2", "#2E7D32", "#8E24AA", "#B84700", "#00838F", "#C2185B", "#5E35B1",
    "#4E7D2A", "#0277BD", "#BF360C", "#00796B", "#3949AB", "#8C6A00", "#6D4C41", "#546E7A",
];

/// The palette index a user id prefers: the same in every room, on every node and in every
/// version, so it uses FNV-1a rather than the standard library's seeded hasher.
pub fn color_for(user_id: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % PALETTE.len() as u64) as usize
}

/// How many users of one room hold each palette color.
#[derive(Debug, Default, Clone)]
pub(crate) struct ColorUse([u32; PALETTE.len()]);

impl ColorUse {
    /// The user's preferred color if it is free in the room, else the next free one in
    /// palette order, else (palette exhausted) the preferred one again.
    pub(crate) fn assign(&mut self, user_id: &str) -> usize {
        let preferred = color_for(user_id);
        let chosen = (0..PALETTE.len())
            .map(|step| (preferred + step) % PALETTE.len())
            .find(|&index| self.0[index] == 0)
            .unwrap_or(preferred);
        self.0[chosen] += 1;
        chosen
    }

    /// Takes the color another node already gave the user, so every node shows the same.
    /// Only a palette color is taken as given: anything else (a forged fact, a buggy
    /// node) is replaced as `assign` would. A palette color already held in the room is
    /// taken too, since every node must list what the owner said; the owner of the later
    /// arrival moves it (see `Tracker::settle_shared_color`).
    pub(crate) fn adopt(&mut self, user_id: &str, color: &str) -> usize {
        match PALETTE.iter().position(|&c| c == color) {
            Some(index) => {
                self.0[index] += 1;
                index
            }
            None => self.assign(user_id),
        }
    }

    /// Whether more than one user of the room holds the color at `index`.
    pub(crate) fn is_shared(&self, index: usize) -> bool {
        self.0.get(index).is_some_and(|&count| count > 1)
    }

    /// Whether some palette color is held by nobody in the room.
    pub(crate) fn has_free(&self) -> bool {
        self.0.contains(&0)
    }

    pub(crate) fn release(&mut self, index: usize) {
        if let Some(count) = self.0.get_mut(index) {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative_luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    #[test]
    fn every_color_keeps_white_initials_readable() {
        for color in PALETTE {
            let contrast = 1.05 / (relative_luminance(color) + 0.05);
            assert!(
                contrast >= 4.5,
                "{color} has contrast {contrast:.2} against white"
            );
        }
        let mut unique = PALETTE.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), PALETTE.len());
    }

    #[test]
    fn a_taken_color_moves_to_the_next_free_one_until_the_palette_is_full() {
        let mut used = ColorUse::default();
        let first = used.assign("alice");
        assert_eq!(first, color_for("alice"));
        let second = used.assign("alice");
        assert_eq!(second, (first + 1) % PALETTE.len());
        for _ in 2..PALETTE.len() {
            used.assign("alice");
        }
        assert_eq!(
            used.assign("alice"),
            first,
            "full palette falls back to the preference"
        );
        used.release(second);
        assert_eq!(used.assign("alice"), second);
    }

    #[test]
    fn only_palette_colors_are_adopted_and_sharing_one_is_visible() {
        let mut used = ColorUse::default();
        assert_eq!(used.adopt("mallory", "#FFFF00"), color_for("mallory"));
        let taken = used.adopt("bob", PALETTE[3]);
        assert_eq!(taken, 3);
        assert!(!used.is_shared(3));
        assert_eq!(used.adopt("carol", PALETTE[3]), 3, "as the owner said");
        assert!(used.is_shared(3));
        assert!(used.has_free());
        for color in PALETTE {
            used.adopt("dave", color);
        }
        assert!(!used.has_free());
    }
}
