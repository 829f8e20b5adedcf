//! Tryton's own ids for the codes a document names (currencies, accounts,
//! products, taxes, analytic accounts), looked up and kept.

use super::*;

impl Tryton {
    /// The id of the record of `model` whose `field` is `code`, if there is exactly one.
    pub(super) async fn find_code(
        &self,
        model: &str,
        field: &str,
        code: &str,
    ) -> Result<Option<i64>, ConnectorError> {
        let k = (format!("{model}.{field}"), code.to_string());
        if let Some(id) = self.codes.lock().expect("not poisoned").get(&k) {
            return Ok(Some(*id));
        }
        let found = self
            .client
            .search(model, &json!([[field, "=", code]]), &["id"])
            .await?;
        let id = match found.as_slice() {
            [one] => raw::id(one).ok_or_else(|| ConnectorError::protocol("record without id"))?,
            [] => return Ok(None),
            _ => {
                return Err(ConnectorError::Rejected {
                    status: 409,
                    message: format!("Tryton has several {model} with {field} {code:?}"),
                });
            }
        };
        self.codes.lock().expect("not poisoned").insert(k, id);
        Ok(Some(id))
    }

    /// Like [`Self::find_code`], and an unknown code is the template's problem, named with the model.
    pub(super) async fn code_id(
        &self,
        model: &str,
        field: &str,
        code: &str,
    ) -> Result<i64, ConnectorError> {
        self.find_code(model, field, code)
            .await?
            .ok_or_else(|| ConnectorError::Rejected {
                status: 404,
                message: format!("Tryton has no {model} with {field} {code:?}"),
            })
    }

    pub(super) async fn header_ids(&self, inv: &InvoiceDoc) -> Result<HeaderIds, ConnectorError> {
        let cfg = &self.client.cfg;
        let party = mapper::parse_erp_id(PARTY, &inv.contact_erp_id)?;
        let invoice_address = self
            .client
            .read("party.party", party, &["addresses"])
            .await?
            .and_then(|p| p.get("addresses").and_then(Value::as_array).cloned())
            .and_then(|a| a.first().and_then(raw::id));
        let receivable = match &cfg.receivable_account {
            Some(code) => self.code_id("account.account", "code", code).await?,
            None => self
                .client
                .read("account.configuration", 1, &["default_account_receivable"])
                .await?
                .and_then(|c| c.get("default_account_receivable").and_then(raw::id))
                .ok_or_else(|| ConnectorError::Config {
                    message: "Tryton has no default receivable account; set receivable_account in the tenant file".into(),
                })?,
        };
        let payment_term = match &cfg.payment_term {
            Some(name) => Some(
                self.code_id("account.invoice.payment_term", "name", name)
                    .await?,
            ),
            None => None,
        };
        Ok(HeaderIds {
            company: cfg.company,
            party,
            invoice_address,
            receivable,
            journal: self
                .code_id("account.journal", "code", &cfg.journal)
                .await?,
            currency: self
                .code_id("currency.currency", "code", inv.currency.code())
                .await?,
            payment_term,
        })
    }

    /// Product, unit, revenue account and taxes of a line. Without an account code
    /// the product's category revenue account is used; when there is none the line
    /// goes without one and Tryton says what is missing.
    pub(super) async fn line_ids(
        &self,
        line: &ferry_core::posting::PostingLine,
    ) -> Result<LineIds, ConnectorError> {
        let mut ids = LineIds::default();
        if let Some(code) = &line.item_code {
            let product = self.code_id("product.product", "code", code).await?;
            ids.product = Some(product);
            if let Some(p) = self
                .client
                .read(
                    "product.product",
                    product,
                    &["default_uom", "account_category.account_revenue"],
                )
                .await?
            {
                ids.unit = p.get("default_uom").and_then(raw::id);
                ids.account = p
                    .get("account_category")
                    .and_then(|c| c.get("account_revenue"))
                    .and_then(raw::id);
            }
        }
        if let Some(code) = &line.account_code {
            ids.account = Some(self.code_id("account.account", "code", code).await?);
        }
        if let Some(tax) = &line.tax_type {
            ids.taxes = vec![self.code_id("account.tax", "name", tax).await?];
        }
        Ok(ids)
    }
}
