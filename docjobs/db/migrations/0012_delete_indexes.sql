-- Indexes for deleting an organisation's documents and templates (issue 22). Each
-- delete checks the columns that point at the deleted row (foreign keys, and "is
-- this PDF still used?"): without an index, every deleted row scans a whole table.

CREATE INDEX document_original_data ON document (original_data_id);
CREATE INDEX document_current_data ON document (current_data_id);
CREATE INDEX document_template ON document (template_id) WHERE template_id IS NOT NULL;
CREATE INDEX template_data ON template (data_id);
CREATE INDEX field_recipient ON field (recipient_id);
