//! Customers as parties (Ferry's reference in `code`) and projects with
//! their tasks as `project.work`.

use super::*;

impl Tryton {
    pub(super) async fn upsert_contact(
        &self,
        item: &OutboundItem,
    ) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let c = doc.contact().ok_or_else(|| ConnectorError::Config {
            message: "contact without a contact body".into(),
        })?;
        let existing = match &item.erp_id {
            Some(id) => Some(mapper::parse_erp_id(PARTY, id)?),
            None => self.party_by_code(&doc.reference).await?,
        };
        let id = match existing {
            Some(id) => match self
                .client
                .write(PARTY, id, &mapper::party_update(c))
                .await?
            {
                Ok(()) => id,
                Err(m) => return Ok(refused(m)),
            },
            None => match self
                .client
                .create("party.party", &mapper::new_party(&doc.reference, c))
                .await?
            {
                Ok(id) => id,
                Err(m) => return Ok(refused(m)),
            },
        };
        Ok(ok(
            mapper::erp_id(PARTY, id),
            Some(doc.reference.clone()),
            json!({ "id": id, "code": doc.reference }),
        ))
    }

    pub(super) async fn party_by_code(&self, code: &str) -> Result<Option<i64>, ConnectorError> {
        // Archived parties too: a customer archived at the source is still the same party.
        Ok(self
            .client
            .search(
                "party.party",
                &json!([["code", "=", code], ["active", "in", [true, false]]]),
                &["id"],
            )
            .await?
            .first()
            .and_then(raw::id))
    }

    pub(super) async fn project_by_reference(
        &self,
        reference: &str,
    ) -> Result<Option<i64>, ConnectorError> {
        Ok(self
            .client
            .search(
                WORK,
                &json!([
                    ["type", "=", "project"],
                    ["comment", "like", format!("{reference}\n%")]
                ]),
                &["id"],
            )
            .await?
            .first()
            .and_then(raw::id))
    }

    pub(super) async fn upsert_project(
        &self,
        item: &OutboundItem,
    ) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let p = doc.project().ok_or_else(|| ConnectorError::Config {
            message: "project without a project body".into(),
        })?;
        let party = mapper::parse_erp_id(PARTY, &p.contact_erp_id)?;
        let status = self
            .code_id(
                "project.work.status",
                "name",
                if p.closed { "Done" } else { "Open" },
            )
            .await?;
        let values = mapper::project_values(&doc.reference, p, party, status);
        let existing = match &item.erp_id {
            Some(id) => Some(mapper::parse_erp_id(WORK, id)?),
            None => self.project_by_reference(&doc.reference).await?,
        };
        let id = match existing {
            Some(id) => match self.client.write(WORK, id, &values).await? {
                Ok(()) => id,
                Err(m) => return Ok(refused(m)),
            },
            None => {
                let mut values = values;
                if let (Some(v), Some(extra)) = (
                    values.as_object_mut(),
                    mapper::new_project(self.client.cfg.company).as_object(),
                ) {
                    v.extend(extra.clone());
                }
                match self.client.create(WORK, &values).await? {
                    Ok(id) => id,
                    Err(m) => return Ok(refused(m)),
                }
            }
        };
        if let Err(m) = self.sync_tasks(id, party, p).await? {
            return Ok(refused(m));
        }
        Ok(ok(
            mapper::erp_id(WORK, id),
            Some(doc.reference.clone()),
            json!({ "id": id, "name": p.name, "tasks": p.tasks.len() }),
        ))
    }

    /// Creates the project's tasks Tryton lacks and renames those whose name
    /// changed. Tasks gone from the PSA stay: they may carry timesheets.
    pub(super) async fn sync_tasks(
        &self,
        project: i64,
        party: i64,
        p: &ferry_core::posting::ProjectDoc,
    ) -> Result<Answer<()>, ConnectorError> {
        if p.tasks.is_empty() {
            return Ok(Ok(()));
        }
        let children = self
            .client
            .search(
                WORK,
                &json!([["parent", "=", project], ["type", "=", "task"]]),
                &["name", "comment"],
            )
            .await?;
        for task in &p.tasks {
            let found = children.iter().find(|c| {
                mapper::has_reference(c.get("comment").and_then(Value::as_str), &task.reference)
            });
            let answer = match found {
                Some(c) if c.get("name").and_then(Value::as_str) == Some(task.name.as_str()) => {
                    Ok(())
                }
                Some(c) => {
                    let id =
                        raw::id(c).ok_or_else(|| ConnectorError::protocol("task without id"))?;
                    self.client
                        .write(WORK, id, &json!({ "name": task.name }))
                        .await?
                }
                None => {
                    let mut values = mapper::task_values(task);
                    values["type"] = json!("task");
                    values["parent"] = json!(project);
                    values["party"] = json!(party);
                    values["company"] = json!(self.client.cfg.company);
                    self.client.create(WORK, &values).await?.map(|_| ())
                }
            };
            if let Err(m) = answer {
                return Ok(Err(format!("task {}: {m}", task.reference)));
            }
        }
        Ok(Ok(()))
    }
}
