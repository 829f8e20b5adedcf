//! Small charts drawn on the server as inline SVG: numbers in, markup out,
//! no script and no library. Only numbers and fixed labels reach the SVG, so
//! it is safe to embed unescaped.

use std::fmt::Write;

/// One group of bars: a label and one value per series.
pub struct Group {
    pub label: String,
    pub values: Vec<u32>,
}

const HEIGHT: u32 = 120;
const BAR: u32 = 7;
const GAP: u32 = 4;

/// Grouped bars, one colour per series (CSS classes `s0`, `s1`, …), with the
/// largest value written at the top and every seventh label under the axis.
pub fn bars(groups: &[Group], title: &str) -> String {
    let series = groups.iter().map(|g| g.values.len()).max().unwrap_or(0) as u32;
    let group_w = series * BAR + GAP;
    let width = (groups.len() as u32 * group_w).max(1) + 40;
    let max = groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {width} {}\" width=\"{width}\" height=\"{}\">",
        text(title),
        HEIGHT + 30,
        HEIGHT + 30
    );
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"10\" class=\"axis\">{max}</text><line x1=\"30\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" class=\"axis\"/>"
    );
    for (i, g) in groups.iter().enumerate() {
        let x0 = 32 + i as u32 * group_w;
        for (s, v) in g.values.iter().enumerate() {
            let h = (u64::from(*v) * u64::from(HEIGHT - 14) / u64::from(max)) as u32;
            let _ = write!(
                svg,
                "<rect class=\"s{s}\" x=\"{}\" y=\"{}\" width=\"{BAR}\" height=\"{h}\"><title>{} {v}</title></rect>",
                x0 + s as u32 * BAR,
                HEIGHT - h,
                text(&g.label)
            );
        }
        // Every seventh label, and the last one when it has room.
        if i % 7 == 0 || (i + 1 == groups.len() && i % 7 >= 3) {
            let _ = write!(
                svg,
                "<text x=\"{x0}\" y=\"{}\" class=\"axis\">{}</text>",
                HEIGHT + 14,
                text(&g.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Text for SVG: the characters markup gives meaning to, escaped.
fn text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars(
            &[
                Group {
                    label: "03-01".into(),
                    values: vec![4, 0],
                },
                Group {
                    label: "<x>".into(),
                    values: vec![2, 1],
                },
            ],
            "opened & resolved",
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains(&format!("height=\"{}\"", HEIGHT - 14)),
            "the largest bar is full height"
        );
        assert!(
            svg.contains(&format!("height=\"{}\"", (HEIGHT - 14) / 2)),
            "half of it is half"
        );
        assert!(svg.contains("&lt;x&gt;") && !svg.contains("<x>"));
        assert!(svg.contains("opened &amp; resolved"));
        assert_eq!(svg.matches("<rect").count(), 4);
        let empty = bars(&[], "nothing");
        assert!(empty.contains("<svg") && !empty.contains("<rect"));
    }
}
