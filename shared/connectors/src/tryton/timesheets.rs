//! Timesheet lines on Ferry's projects, each under its time entry's reference.

use super::*;

impl Tryton {
    /// The timesheet work of a project or task (`project.work`).
    pub(super) async fn timesheet_work(&self, work: i64) -> Result<Option<i64>, ConnectorError> {
        Ok(self
            .client
            .read(WORK, work, &["timesheet_works"])
            .await?
            .and_then(|w| {
                w.get("timesheet_works")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first().and_then(raw::id))
            }))
    }

    pub(super) async fn timesheet_by_reference(
        &self,
        reference: &str,
    ) -> Result<Option<i64>, ConnectorError> {
        Ok(self
            .client
            .search(
                TIMESHEET,
                &json!([["description", "like", format!("{reference} %")]]),
                &["id"],
            )
            .await?
            .first()
            .and_then(raw::id))
    }

    /// The employee who worked the hours: the one whose party has the person's
    /// name, else the configured stand-in; for neither, Ferry says so.
    pub(super) async fn employee(
        &self,
        person: Option<&str>,
    ) -> Result<Answer<i64>, ConnectorError> {
        if let Some(name) = person
            && let Some(id) = self
                .find_code("company.employee", "party.name", name)
                .await?
        {
            return Ok(Ok(id));
        }
        match &self.client.cfg.employee {
            Some(stand_in) => self
                .code_id("company.employee", "party.name", stand_in)
                .await
                .map(Ok),
            None => Ok(Err(format!(
                "Tryton has no employee named {:?}; add one, or set employee in the tenant's [erp.tryton] for time of people without one",
                person.unwrap_or("(no name)")
            ))),
        }
    }

    pub(super) async fn upsert_timesheet(
        &self,
        item: &OutboundItem,
    ) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let t = doc.timesheet().ok_or_else(|| ConnectorError::Config {
            message: "timesheet without a timesheet body".into(),
        })?;
        // The line Ferry wrote before, if it is still there (someone may have removed it in Tryton).
        let known = match &item.erp_id {
            Some(id) => {
                let id = mapper::parse_erp_id(TIMESHEET, id)?;
                self.client.read(TIMESHEET, id, &["id"]).await?.map(|_| id)
            }
            None => None,
        };
        let existing = match known {
            Some(id) => Some(id),
            None => self.timesheet_by_reference(&doc.reference).await?,
        };
        if t.removed {
            let Some(id) = existing else {
                return Ok(ok(
                    item.erp_id.clone().unwrap_or_default(),
                    None,
                    json!({ "absent": true }),
                ));
            };
            return match self.client.delete(TIMESHEET, id).await? {
                Ok(()) => Ok(ok(
                    mapper::erp_id(TIMESHEET, id),
                    None,
                    json!({ "id": id, "deleted": true }),
                )),
                Err(m) => Ok(refused(m)),
            };
        }
        let project = mapper::parse_erp_id(WORK, &t.project_erp_id)?;
        // On the task when Tryton has it (found by its reference), else on the project.
        let task = match &t.task_reference {
            Some(r) => self
                .client
                .search(
                    WORK,
                    &json!([
                        ["parent", "=", project],
                        ["type", "=", "task"],
                        ["comment", "like", format!("{r}\n%")]
                    ]),
                    &["id"],
                )
                .await?
                .first()
                .and_then(raw::id),
            None => None,
        };
        let Some(line_work) = self.timesheet_work(task.unwrap_or(project)).await? else {
            return Ok(refused(format!(
                "Tryton project {} has no timesheet work (is \"Available on timesheets\" off?)",
                t.project_erp_id
            )));
        };
        let employee = match self.employee(t.person.as_deref()).await? {
            Ok(e) => e,
            Err(m) => return Ok(refused(m)),
        };
        let values = mapper::timesheet_values(&doc.reference, t, line_work, employee);
        let id = match existing {
            Some(id) => match self.client.write(TIMESHEET, id, &values).await? {
                Ok(()) => id,
                Err(m) => return Ok(refused(m)),
            },
            None => {
                let mut values = values;
                values["company"] = json!(self.client.cfg.company);
                match self.client.create(TIMESHEET, &values).await? {
                    Ok(id) => id,
                    Err(m) => return Ok(refused(m)),
                }
            }
        };
        Ok(ok(
            mapper::erp_id(TIMESHEET, id),
            Some(doc.reference.clone()),
            json!({ "id": id }),
        ))
    }
}
