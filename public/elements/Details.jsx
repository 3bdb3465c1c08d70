// A fold for the numbers behind a message (the critique's exact figures, the export's folder and
// code): closed until the reader opens it. `props.html` is Markdown rendered by the app with raw
// HTML escaped (markdown-it, html=False), so the model's words cannot become markup.
export default function Details() {
  return (
    <details className="details-fold rounded-md border border-border px-3 py-2 text-sm">
      <summary className="cursor-pointer select-none font-medium">{props.title}</summary>
      <div className="details-body mt-2 overflow-x-auto" dangerouslySetInnerHTML={{ __html: props.html }} />
    </details>
  );
}
