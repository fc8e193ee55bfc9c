//! The dashboard's data table: one header row of column labels, the page's rows below. Every
//! list page builds its table through [`Table`], so the markup (and the `table__*` classes
//! that right-align money and numbers) is written once.

use leptos::prelude::*;

/// A column's header: its label and, for money and numbers, the class that aligns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The header text (already in the page's language; may be empty).
    pub label: &'static str,
    /// The header cell's class (`table__money`, `table__num`), if any.
    pub class: Option<&'static str>,
}

impl Column {
    /// A plain column.
    pub const fn new(label: &'static str) -> Column {
        Column { label, class: None }
    }

    /// A column of amounts (right-aligned).
    pub const fn money(label: &'static str) -> Column {
        Column {
            label,
            class: Some("table__money"),
        }
    }

    /// A column of numbers (right-aligned).
    pub const fn num(label: &'static str) -> Column {
        Column {
            label,
            class: Some("table__num"),
        }
    }
}

/// `<table class="table …">` with its header; the rows are the children.
#[component]
pub fn Table(
    /// The columns, left to right.
    #[prop(into)]
    columns: Vec<Column>,
    /// `data-testid`, if the page's tests look for it.
    #[prop(optional)]
    testid: Option<&'static str>,
    /// A class beside `table` (`order-table`).
    #[prop(optional)]
    class: Option<&'static str>,
    /// The rows (`<tr>`s).
    children: Children,
) -> impl IntoView {
    let class = match class {
        Some(extra) => format!("table {extra}"),
        None => "table".to_owned(),
    };
    let header = columns
        .into_iter()
        .map(|c| view! { <th class=c.class>{c.label}</th> })
        .collect_view();
    view! {
        <table class=class data-testid=testid>
            <thead>
                <tr>{header}</tr>
            </thead>
            <tbody>{children()}</tbody>
        </table>
    }
}
