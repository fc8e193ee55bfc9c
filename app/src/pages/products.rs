//! Products (admin): the catalogue the mini program sells from. Prices are typed in yuan
//! (¥12.34) and stored as exact fen; an order keeps the price it was made with.

use leptos::prelude::*;
use leptos_meta::Title;
use paydesk_types::Fen;

use crate::components::table::{Column, Table};
use crate::dto::ProductSummary;
use crate::error::{AppError, ErrorBanner, Refused};
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
        <Title text=format!("{} · paydesk", Msg::ProductsTitle.text(lang))/>
        <h1 class="page__title">{Msg::ProductsTitle.text(lang)}</h1>
        <p class="page__intro">{Msg::ProductsIntro.text(lang)}</p>
        <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>
            {move || Suspend::new(async move {
                match products.await {
                    Ok(list) => view! {
                        <ProductResults add update/>
                        <ProductTable list update/>
                        <AddProductForm add/>
                    }
                    .into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProductResults(
    add: ServerAction<AddProduct>,
    update: ServerAction<UpdateProduct>,
) -> impl IntoView {
    let lang = use_lang();
    let shown = move |r: Option<Result<ProductSummary, AppError>>| {
        r.map(|r| match r {
            Ok(p) => view! {
                <p class="banner banner--ok" role="status">
                    {Msg::Saved.text(lang)} " " {p.name} " " {Fen(p.price_fen).display_yuan()}
                </p>
            }
            .into_any(),
            Err(error) => view! { <ErrorBanner error/> }.into_any(),
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
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let (Some(Ok(_)), Some(form)) = (add.value().get(), form.get()) {
            form.reset();
        }
    });
    view! {
        <section class="card">
            <h2 class="card__title">{Msg::AddProduct.text(lang)}</h2>
            <ActionForm action=add node_ref=form attr:class="form form--row" attr:data-testid="add-product-form">
                <label class="form__field">
                    <span>{Msg::ProductName.text(lang)}</span>
                    <input name="name" required maxlength="40" autocomplete="off"/>
                </label>
                <label class="form__field">
                    <span>{Msg::PriceYuan.text(lang)}</span>
                    <input name="price" required inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?" placeholder="12.34"/>
                </label>
                <button type="submit" class="button button--primary">{Msg::AddProduct.text(lang)}</button>
            </ActionForm>
        </section>
    }
}
