// Sends a provider's checkout form (ECPay) as soon as its order page loads, as the provider
// expects; with JavaScript off the form's button does the same. Kept in a file of its own
// because the pages' Content-Security-Policy allows no inline script.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form) {
    form.submit();
  }
});
