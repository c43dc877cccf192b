"""Assessment: QuestionnaireResponse validation against its Questionnaire (pure functions over FHIR JSON)."""
