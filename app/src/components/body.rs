//! The raw-body block: a stored body laid out for reading, with a copy button that copies
//! the whole text as stored (notifications, API calls).

use leptos::prelude::*;
use paydesk_types::grouped;

use crate::dto::ShownBody;
use crate::i18n::{use_lang, Lang};

crate::messages! {
/// The raw-body block's words.
pub enum BodyMsg {
    Copied => "已复制", "Copied";
    BodyNotXml => "报文不是 XML，按原文显示。", "The body is not XML; shown as received.";
    CopyCopiesAll => "复制按钮复制全文。", "The copy button copies all of it.";
}
}

/// "Showing the first N bytes of M", for a body laid out only in part.
pub fn cut_notice(shown: u64, total: u64, lang: Lang) -> String {
    let (shown, total) = (grouped(shown), grouped(total));
    match lang {
        Lang::Zh => format!("报文较长：显示前 {shown} 字节，共 {total} 字节。"),
        Lang::En => format!("A long body: showing the first {shown} bytes of {total}."),
    }
}

/// Copies `text` to the clipboard (in the browser; nothing happens on the server).
fn copy_to_clipboard(text: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// A body in a `<pre>` (escaped like any text) with a copy button.
#[component]
pub fn BodyBlock(
    /// The heading.
    title: &'static str,
    /// The body.
    body: ShownBody,
    /// The copy button's label.
    copy_label: &'static str,
    /// `data-testid` of the `<pre>`.
    testid: &'static str,
) -> impl IntoView {
    let lang = use_lang();
    let copied = RwSignal::new(false);
    let text = body.raw.clone();
    let cut = (body.shown < body.total).then(|| {
        view! {
            <p class="muted" data-testid=format!("{testid}-cut")>
                {cut_notice(body.shown, body.total, lang)} " " {BodyMsg::CopyCopiesAll.text(lang)}
            </p>
        }
    });
    view! {
        <section class="card body-block">
            <div class="body-block__head">
                <h2 class="card__title">{title}</h2>
                <button type="button" class="button button--small" data-testid=format!("{testid}-copy")
                    on:click=move |_| {
                        copy_to_clipboard(&text);
                        copied.set(true);
                    }>
                    {move || if copied.get() { BodyMsg::Copied.text(lang) } else { copy_label }}
                </button>
            </div>
            {(body.format == "text").then(|| view! { <p class="muted">{BodyMsg::BodyNotXml.text(lang)}</p> })}
            {cut}
            <pre class="body" data-testid=testid data-format=body.format.clone()>{body.pretty}</pre>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_body_says_how_much_is_shown() {
        assert_eq!(
            cut_notice(65_536, 1_048_576, Lang::Zh),
            "报文较长：显示前 65,536 字节，共 1,048,576 字节。"
        );
        assert_eq!(
            cut_notice(999, 1000, Lang::En),
            "A long body: showing the first 999 bytes of 1,000."
        );
    }
}
