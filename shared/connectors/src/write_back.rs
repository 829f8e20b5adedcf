//! Payment write-back as the PSAs that record payments one by one share it
//! (ConnectWise, Harvest): the PSA is read first on every attempt, and only the
//! difference to what the ERP shows paid is recorded, so a retry after an
//! unanswered call never pays twice.

use ferry_core::ConnectorError;
use ferry_core::ports::PaymentUpdate;
use rust_decimal::Decimal;

/// What to record so the PSA shows what the ERP shows paid, given what it
/// already `recorded`: nothing when they agree; a smaller amount (a reversal)
/// is refused, for a person.
pub fn payment_to_record(
    update: &PaymentUpdate,
    recorded: Decimal,
    psa: &str,
) -> Result<Option<Decimal>, ConnectorError> {
    let delta = update.amount_paid.amount - recorded;
    if delta.is_zero() {
        return Ok(None);
    }
    if delta.is_sign_negative() {
        return Err(ConnectorError::Rejected {
            status: 409,
            message: format!(
                "the ERP shows {} paid but {psa} already records {recorded}; reversals need a person",
                update.amount_paid
            ),
        });
    }
    Ok(Some(delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_canon::{Currency, Money};

    #[test]
    fn only_the_difference_is_recorded_and_a_reversal_is_refused() {
        let usd = Currency::parse("USD").expect("usd");
        let update = |paid: i64| PaymentUpdate {
            amount_paid: Money::new(Decimal::from(paid), usd),
            amount_due: Money::new(Decimal::ZERO, usd),
            paid_on: None,
            erp_reference: "INV-1".into(),
        };
        assert_eq!(
            payment_to_record(&update(400), Decimal::ZERO, "X").unwrap(),
            Some(Decimal::from(400))
        );
        assert_eq!(
            payment_to_record(&update(400), Decimal::from(400), "X").unwrap(),
            None
        );
        assert_eq!(
            payment_to_record(&update(1000), Decimal::from(400), "X").unwrap(),
            Some(Decimal::from(600))
        );
        assert!(matches!(
            payment_to_record(&update(100), Decimal::from(400), "X"),
            Err(ConnectorError::Rejected { status: 409, .. })
        ));
    }
}
