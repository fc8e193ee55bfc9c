//! Products (admin): the catalogue the mini program sells from. Prices are typed in yuan
//! (¥12.34) and stored as exact fen; an order keeps the price it was made with.

use leptos::prelude::*;
use paydesk_types::Fen;

use crate::components::form::{reset_on_success, result_line, Field, OkBanner};
use crate::components::page::{Loaded, PageHeader};
use crate::components::table::{Column, Table};
use crate::dto::ProductSummary;
use crate::error::AppError;
use crate::i18n::{use_lang, Msg};
use crate::server::products::{list_products, AddProduct, UpdateProduct};

/// `/products`.
#[component]
pub fn ProductsPage() -> impl IntoView {
    let lang = use_lang();
    let add = ServerAction::<AddProduct>::new();
    let update = ServerAction::<UpdateProduct>::new();
    let products = Resource::new(
        move || (add.version().get(), update.version().get()),
        |_| list_products(),
    );
    view! {
        <PageHeader title=Msg::ProductsTitle.text(lang) intro=Msg::ProductsIntro.text(lang)/>
        <Loaded
            resource=products
            render=move |list| view! {
                <ProductResults add update/>
                <ProductTable list update/>
                <AddProductForm add/>
            }
        />
    }
}

#[component]
fn ProductResults(
    add: ServerAction<AddProduct>,
    update: ServerAction<UpdateProduct>,
) -> impl IntoView {
    let lang = use_lang();
    let shown = move |r: Option<Result<ProductSummary, AppError>>| {
        result_line(r, |p| {
            view! {
            <OkBanner>{Msg::Saved.text(lang)} " " {p.name} " " {Fen(p.price_fen).display_yuan()}</OkBanner>
        }.into_any()
        })
    };
    view! {
        {move || shown(add.value().get())}
        {move || shown(update.value().get())}
    }
}

/// Fen as the yuan text the price field shows and accepts (`1234` → `12.34`).
fn yuan_text(fen: i64) -> String {
    Fen(fen)
        .display_yuan()
        .trim_start_matches('¥')
        .replace(',', "")
}

#[component]
fn ProductTable(list: Vec<ProductSummary>, update: ServerAction<UpdateProduct>) -> impl IntoView {
    let lang = use_lang();
    let rows = list
        .into_iter()
        .map(|p| {
            let form_id = format!("product-{}", p.id);
            view! {
                <tr class="table__row" class:table__row--disabled=!p.active data-product=p.id>
                    <td class="table__num">{p.id}</td>
                    <td>
                        <input form=form_id.clone() name="name" value=p.name.clone() required maxlength="40" aria-label=Msg::ProductName.text(lang)/>
                    </td>
                    <td class="table__money">
                        <span class="money-input">"¥"<input form=form_id.clone() name="price" value=yuan_text(p.price_fen) required inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?" size="8" aria-label=Msg::Price.text(lang)/></span>
                    </td>
                    <td>
                        <select form=form_id.clone() name="active" aria-label=Msg::Status.text(lang)>
                            <option value="true" selected=p.active>{Msg::OnSale.text(lang)}</option>
                            <option value="false" selected=!p.active>{Msg::OffSale.text(lang)}</option>
                        </select>
                    </td>
                    <td class="table__actions">
                        <ActionForm action=update attr:class="inline-form" attr:id=form_id>
                            <input type="hidden" name="id" value=p.id/>
                            <button type="submit" class="button button--small">{Msg::Save.text(lang)}</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        Column::new("ID"),
        Column::new(Msg::ProductName.text(lang)),
        Column::new(Msg::Price.text(lang)),
        Column::new(Msg::Status.text(lang)),
        Column::new(Msg::Actions.text(lang)),
    ];
    view! {
        <Table columns testid="products-table">{rows}</Table>
    }
}

#[component]
fn AddProductForm(add: ServerAction<AddProduct>) -> impl IntoView {
    let lang = use_lang();
    let form = reset_on_success(add);
    view! {
        <section class="card">
            <h2 class="card__title">{Msg::AddProduct.text(lang)}</h2>
            <ActionForm action=add node_ref=form attr:class="form form--row" attr:data-testid="add-product-form">
                <Field label=Msg::ProductName.text(lang)>
                    <input name="name" required maxlength="40" autocomplete="off"/>
                </Field>
                <Field label=Msg::PriceYuan.text(lang)>
                    <input name="price" required inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?" placeholder="12.34"/>
                </Field>
                <button type="submit" class="button button--primary">{Msg::AddProduct.text(lang)}</button>
            </ActionForm>
        </section>
    }
}
